"""no index takes random inserts for nothing: the ledger's (warehouse, sku), payload hashes, a duplicate

* ``ix_movements_wh_sku``: every reservation, release and shipment appends a
  stock movement, about eleven an order. Keyed by (warehouse, sku), each went
  to a random page of an index that grows with the whole history: with a
  million orders stored that is some eleven million entries, and every commit
  wrote each page it touched to the write-ahead log again. Nothing reads the
  ledger by that key: a SKU's balance is its ``stock`` row, and the ledger is
  the trail of every change to it, appended in order. A reconciliation would
  read it from its last check on, by its own key.
* ``ix_raw_payloads_sha256``: a payload's hash shows its body is the one
  received; nothing looks a payload up by it. A hash lands anywhere in the
  index, and webhooks store one payload per order.
* ``ix_order_lines_order_id``: ``uq_line_no`` (order_id, line_no) leads with the
  same column and serves every lookup of an order's lines.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-03 14:00:00
"""
from __future__ import annotations

from alembic import op

revision = '0006'
down_revision = '0005'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.drop_index('ix_movements_wh_sku', table_name='stock_movements')
    op.drop_index('ix_raw_payloads_sha256', table_name='raw_payloads')
    op.drop_index('ix_order_lines_order_id', table_name='order_lines')


def downgrade() -> None:
    op.create_index('ix_order_lines_order_id', 'order_lines', ['order_id'], unique=False)
    op.create_index('ix_raw_payloads_sha256', 'raw_payloads', ['sha256'], unique=False)
    op.create_index('ix_movements_wh_sku', 'stock_movements', ['warehouse', 'sku'], unique=False)
