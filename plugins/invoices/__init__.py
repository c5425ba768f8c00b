"""E-invoice formats: the built-in oms-einvoice/1 JSON."""
