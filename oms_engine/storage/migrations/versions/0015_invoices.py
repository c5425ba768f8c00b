"""invoices: ``invoices``, an order's invoice and the credit notes of its refunds, each with its e-invoice

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-07 03:30:00
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0015'
down_revision = '0014'
branch_labels = None
depends_on = None

_ID = sa.BigInteger().with_variant(sa.Integer(), 'sqlite')


def upgrade() -> None:
    op.create_table('invoices',
    sa.Column('id', _ID, autoincrement=True, nullable=False),
    sa.Column('number', sa.String(length=40), nullable=False),
    sa.Column('order_id', _ID, nullable=False),
    sa.Column('for_order_id', _ID, nullable=True),
    sa.Column('kind', sa.String(length=12), nullable=False),
    sa.Column('amount', sa.BigInteger(), nullable=False),
    sa.Column('tax', sa.BigInteger(), nullable=False),
    sa.Column('currency', sa.String(length=3), nullable=False),
    sa.Column('lines', sa.JSON(), nullable=False),
    sa.Column('refers_to', sa.String(length=40), nullable=True),
    sa.Column('refunds', sa.JSON(), nullable=True),
    sa.Column('reason', sa.String(length=300), nullable=False),
    sa.Column('document', sa.JSON(), nullable=False),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.CheckConstraint('amount >= 0 AND tax >= 0', name='ck_invoice_amounts'),
    sa.ForeignKeyConstraint(['for_order_id'], ['orders.id'], ),
    sa.ForeignKeyConstraint(['order_id'], ['orders.id'], ),
    sa.ForeignKeyConstraint(['refers_to'], ['invoices.number'], ),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('number')
    )
    op.create_index('ix_invoices_order', 'invoices', ['order_id', 'id'], unique=False)


def downgrade() -> None:
    op.drop_index('ix_invoices_order', table_name='invoices')
    op.drop_table('invoices')
