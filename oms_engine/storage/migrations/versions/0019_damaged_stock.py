"""damaged stock: a separate stock status for goods that came back damaged

``damaged_stock`` holds, per warehouse and SKU, the units a customer's return brought back damaged, apart
from the stock row's on hand; ``stock_movements.damaged_delta`` is each ledger row's change of it
(stock/movements.py: ``return_damaged``, ``scrap``, ``regrade``). Rows written before have none: 0.

Down drops both. The ledger rows of the damaged kinds stay: their on-hand and value deltas (a regrade's)
are still what moved the stock rows.

Revision ID: 0019
Revises: 0018
Create Date: 2026-12-07 09:16:00
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0019'
down_revision = '0018'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('damaged_stock',
    sa.Column('warehouse', sa.String(length=32), nullable=False),
    sa.Column('sku', sa.String(length=64), nullable=False),
    sa.Column('quantity', sa.Integer(), nullable=False),
    sa.CheckConstraint('quantity >= 0', name='ck_damaged_stock_quantity'),
    sa.ForeignKeyConstraint(['sku'], ['products.sku'], ),
    sa.ForeignKeyConstraint(['warehouse'], ['warehouses.code'], ),
    sa.PrimaryKeyConstraint('warehouse', 'sku')
    )
    op.add_column('stock_movements', sa.Column('damaged_delta', sa.Integer(), server_default='0', nullable=False))


def downgrade() -> None:
    op.drop_column('stock_movements', 'damaged_delta')
    op.drop_table('damaged_stock')
