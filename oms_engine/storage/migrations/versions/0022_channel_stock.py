"""channel stock: ``channel_stock``, what each channel account was last told it may sell of each of its SKUs;
``stock_push_cursors``, how far its stock pushes have read the stock ledger

Revision ID: 0022
Revises: 0021
Create Date: 2026-12-07 20:00:00
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0022'
down_revision = '0021'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'channel_stock',
        sa.Column('account', sa.String(length=32), nullable=False),
        sa.Column('channel_sku', sa.String(length=64), nullable=False),
        sa.Column('sku', sa.String(length=64), nullable=False),
        sa.Column('quantity', sa.Integer(), nullable=False),
        sa.Column('queued_at', sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint('account', 'channel_sku'),
    )
    op.create_table(
        'stock_push_cursors',
        sa.Column('account', sa.String(length=32), nullable=False),
        sa.Column('movement_id', sa.BigInteger(), nullable=False),
        sa.Column('swept_at', sa.DateTime(), nullable=True),
        sa.Column('updated_at', sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint('account'),
    )


def downgrade() -> None:
    op.drop_table('stock_push_cursors')
    op.drop_table('channel_stock')
