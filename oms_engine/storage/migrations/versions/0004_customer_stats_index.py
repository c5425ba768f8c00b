"""customer statistics answered from an index: (customer_id, parent_id, placed_at)

The blocking rules read each customer's orders so far and orders in the last
day (decisions/order_facts.py). With only customer_id indexed, that read each
of the customer's order rows: a quarter of the pipeline's time with a million
orders stored. The wider index answers it alone and still serves every lookup
by customer.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-01 23:55:00
"""
from __future__ import annotations

from alembic import op

revision = '0004'
down_revision = '0003'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('orders', schema=None) as batch_op:
        batch_op.drop_index('ix_orders_customer')
        batch_op.create_index('ix_orders_customer', ['customer_id', 'parent_id', 'placed_at'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('orders', schema=None) as batch_op:
        batch_op.drop_index('ix_orders_customer')
        batch_op.create_index('ix_orders_customer', ['customer_id'], unique=False)
