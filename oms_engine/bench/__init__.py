"""``oms bench``: a realistic synthetic load through the real pipeline, and a baseline to hold it against."""
