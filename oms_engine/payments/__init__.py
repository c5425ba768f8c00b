"""Payments: the payment status of an order. Refunds, captures and reconciliation will live here."""
