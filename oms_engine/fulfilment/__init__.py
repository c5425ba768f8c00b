"""Fulfilment: documents sent to warehouses and carriers, their callbacks, and the status map."""
