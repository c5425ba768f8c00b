"""Invoices: one per order paid in full, and a credit note for every refund of its money (issuing.py), each with
the e-invoice a tax platform takes (einvoice.py), submitted to it through the outbox as it is issued
(submission.py)."""
