"""Stock: the ledger of movements, reservations per order line, warehouses and the stock views
strategies decide on, and the cover of an order's units by warehouses."""
