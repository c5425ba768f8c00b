"""Settlement: what each merchant of a marketplace order sold, had refunded and owes in commission, per period
(statements.py), the commission rates decided by rules/commission.yaml (commission.py)."""
