"""The demo: a generated world of orders driven through the real pipeline on a simulated clock."""
