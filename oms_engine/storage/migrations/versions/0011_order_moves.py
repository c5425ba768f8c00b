"""order moves: ``orders.move_to``, the warehouse an order goes to once the first one has stopped picking it;
``orders.avoid_warehouse``, one that reported it cannot fill the order

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-06 23:20:00
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0011'
down_revision = '0010'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column('orders', sa.Column('move_to', sa.String(length=32), nullable=True))
    op.add_column('orders', sa.Column('avoid_warehouse', sa.String(length=32), nullable=True))


def downgrade() -> None:
    op.drop_column('orders', 'avoid_warehouse')
    op.drop_column('orders', 'move_to')
