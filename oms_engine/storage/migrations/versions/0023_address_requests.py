"""address requests: ``address_requests``, a new delivery address asked of the warehouse that holds an order's
document (after dispatch), and the warehouse's answer

Revision ID: 0023
Revises: 0022
Create Date: 2026-12-08 10:00:00
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0023'
down_revision = '0022'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'address_requests',
        sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
        sa.Column('order_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
        sa.Column('update_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=True),
        sa.Column('warehouse', sa.String(length=32), nullable=False),
        sa.Column('document', sa.String(length=64), nullable=False),
        sa.Column('address', sa.JSON(), nullable=False),
        sa.Column('status', sa.String(length=16), nullable=False),
        sa.Column('requested_at', sa.DateTime(), nullable=False),
        sa.Column('answered_at', sa.DateTime(), nullable=True),
        sa.Column('answer', sa.Text(), nullable=False),
        sa.ForeignKeyConstraint(['order_id'], ['orders.id']),
        sa.ForeignKeyConstraint(['update_id'], ['order_updates.id']),
        sa.PrimaryKeyConstraint('id'),
        sa.UniqueConstraint('update_id', 'order_id', name='uq_address_request_update'),
    )
    with op.batch_alter_table('address_requests', schema=None) as batch_op:
        batch_op.create_index('ix_address_requests_order', ['order_id', 'status'], unique=False)


def downgrade() -> None:
    op.drop_table('address_requests')
