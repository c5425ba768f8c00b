"""warehouse documents: every message exchanged byte for byte, goods-in and goods-out documents, tracking

* ``exchanges``: each document sent to a warehouse or carrier, each answer and
  each callback received, its bytes as they were, with a correlation id.
* ``stock_documents`` and their lines: purchase orders, returns to vendors and
  customer returns a warehouse works, with what it received or sent so far.
* ``tracking_events``: carriers' (and warehouses' customer-visible) events about
  a parcel, apart from the order's status.
* ``inbox``: the warehouse an HTTP callback came from, and the id it gave it.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-06 23:40:00
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0009'
down_revision = '0008'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('exchanges',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('at', sa.DateTime(), nullable=False),
    sa.Column('direction', sa.String(length=8), nullable=False),
    sa.Column('kind', sa.String(length=16), nullable=False),
    sa.Column('connector', sa.String(length=64), nullable=False),
    sa.Column('warehouse', sa.String(length=32), nullable=True),
    sa.Column('order_number', sa.String(length=32), nullable=False),
    sa.Column('topic', sa.String(length=64), nullable=False),
    sa.Column('correlation_id', sa.String(length=128), nullable=False),
    sa.Column('message_id', sa.BigInteger(), nullable=True),
    sa.Column('status', sa.Integer(), nullable=True),
    sa.Column('content_type', sa.String(length=100), nullable=False),
    sa.Column('body', sa.LargeBinary(), nullable=False),
    sa.Column('note', sa.Text(), nullable=False),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('exchanges', schema=None) as batch_op:
        batch_op.create_index('ix_exchanges_correlation', ['correlation_id'], unique=False)
        batch_op.create_index('ix_exchanges_order', ['order_number', 'id'], unique=False)

    op.create_table('stock_documents',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('number', sa.String(length=64), nullable=False),
    sa.Column('kind', sa.String(length=24), nullable=False),
    sa.Column('warehouse', sa.String(length=32), nullable=False),
    sa.Column('supplier', sa.String(length=32), nullable=True),
    sa.Column('order_number', sa.String(length=32), nullable=True),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('expected_at', sa.DateTime(), nullable=True),
    sa.Column('note', sa.Text(), nullable=False),
    sa.Column('actor', sa.String(length=100), nullable=False),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.Column('updated_at', sa.DateTime(), nullable=False),
    sa.ForeignKeyConstraint(['supplier'], ['suppliers.code'], ),
    sa.ForeignKeyConstraint(['warehouse'], ['warehouses.code'], ),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('number')
    )
    op.create_table('stock_document_lines',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('document_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('line_no', sa.Integer(), nullable=False),
    sa.Column('sku', sa.String(length=64), nullable=False),
    sa.Column('quantity', sa.Integer(), nullable=False),
    sa.Column('done', sa.Integer(), nullable=False),
    sa.Column('unit_cost', sa.BigInteger(), nullable=True),
    sa.CheckConstraint('done >= 0', name='ck_stock_document_done'),
    sa.CheckConstraint('quantity > 0', name='ck_stock_document_quantity'),
    sa.ForeignKeyConstraint(['document_id'], ['stock_documents.id'], ),
    sa.ForeignKeyConstraint(['sku'], ['products.sku'], ),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('document_id', 'line_no', name='uq_stock_document_line')
    )
    op.create_table('tracking_events',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('order_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('source', sa.String(length=64), nullable=False),
    sa.Column('source_kind', sa.String(length=8), nullable=False),
    sa.Column('status', sa.String(length=64), nullable=False),
    sa.Column('label', sa.String(length=200), nullable=False),
    sa.Column('customer_visible', sa.Boolean(), nullable=False),
    sa.Column('tracking_no', sa.String(length=64), nullable=False),
    sa.Column('place', sa.String(length=200), nullable=False),
    sa.Column('at', sa.DateTime(), nullable=False),
    sa.Column('received_at', sa.DateTime(), nullable=False),
    sa.Column('outcome', sa.String(length=200), nullable=False),
    sa.ForeignKeyConstraint(['order_id'], ['orders.id'], ),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('tracking_events', schema=None) as batch_op:
        batch_op.create_index('ix_tracking_order', ['order_id', 'at'], unique=False)

    # Plain ADD COLUMN: the inbox can be large, and a batch would copy it on SQLite.
    op.add_column('inbox', sa.Column('warehouse', sa.String(length=32), nullable=True))
    op.add_column('inbox', sa.Column('correlation_id', sa.String(length=128), nullable=True))
    op.create_index('ix_inbox_correlation', 'inbox', ['source', 'correlation_id'], unique=False)



def downgrade() -> None:
    op.drop_index('ix_inbox_correlation', table_name='inbox')
    for column in ('correlation_id', 'warehouse'):   # in place (SQLite 3.35 and later), as 0008 does
        op.execute(f'ALTER TABLE inbox DROP COLUMN {column}')

    with op.batch_alter_table('tracking_events', schema=None) as batch_op:
        batch_op.drop_index('ix_tracking_order')

    op.drop_table('tracking_events')
    op.drop_table('stock_document_lines')
    op.drop_table('stock_documents')
    with op.batch_alter_table('exchanges', schema=None) as batch_op:
        batch_op.drop_index('ix_exchanges_order')
        batch_op.drop_index('ix_exchanges_correlation')

    op.drop_table('exchanges')
