"""channels: ``order_channel_fields``, the channel's own words of an order (its order type and status there,
the fields the canonical order has no place for, line properties and line fields), one row for an order whose
channel sent any; ``channel_cursors``, where each channel account's next pull starts; ``order_updates``, a
channel's changed word about an order it sent before and what the OMS made of it

Revision ID: 0021
Revises: 0020
Create Date: 2026-12-07 16:00:00
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0021'
down_revision = '0020'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'order_channel_fields',
        sa.Column('order_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
        sa.Column('order_type', sa.String(length=32), nullable=False),
        sa.Column('channel_status', sa.String(length=64), nullable=False),
        sa.Column('extensions', sa.JSON(), nullable=False),
        sa.Column('lines', sa.JSON(), nullable=False),
        sa.Column('refunded', sa.BigInteger(), nullable=False),
        sa.Column('updated_at', sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(['order_id'], ['orders.id']),
        sa.PrimaryKeyConstraint('order_id'),
    )
    op.create_table(
        'channel_cursors',
        sa.Column('account', sa.String(length=32), nullable=False),
        sa.Column('cursor', sa.Text(), nullable=True),
        sa.Column('pulled_at', sa.DateTime(), nullable=True),
        sa.Column('pages', sa.BigInteger(), nullable=False),
        sa.Column('orders', sa.BigInteger(), nullable=False),
        sa.Column('last_error', sa.Text(), nullable=False),
        sa.Column('updated_at', sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint('account'),
    )
    op.create_table(
        'order_updates',
        sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
        sa.Column('order_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
        sa.Column('payload_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=True),
        sa.Column('received_at', sa.DateTime(), nullable=False),
        sa.Column('order', sa.JSON(), nullable=False),
        sa.Column('content_hash', sa.String(length=64), nullable=False),
        sa.Column('status', sa.String(length=16), nullable=False),
        sa.Column('changes', sa.JSON(), nullable=True),
        sa.Column('outcome', sa.Text(), nullable=False),
        sa.Column('applied_at', sa.DateTime(), nullable=True),
        sa.ForeignKeyConstraint(['order_id'], ['orders.id']),
        sa.ForeignKeyConstraint(['payload_id'], ['raw_payloads.id']),
        sa.PrimaryKeyConstraint('id'),
    )
    with op.batch_alter_table('order_updates', schema=None) as batch_op:
        batch_op.create_index('ix_order_updates_order_id', ['order_id'], unique=False)
        batch_op.create_index('ix_order_updates_status', ['status', 'id'], unique=False)


def downgrade() -> None:
    op.drop_table('order_updates')
    op.drop_table('channel_cursors')
    op.drop_table('order_channel_fields')
