"""After-sales: cases customers open on an order they received (refund only, return and refund), reviewed by the
rules in rules/aftersales.yaml, and run on the generic state machine (cases.py)."""
