"""fulfilment decisions: merge groups, courier choice, kits and lots, delivery windows, late steps

* ``merge_groups``: orders of one customer shipped as one document and parcel;
  ``orders.merge_group_id`` points at an order's group.
* ``orders``: ``service`` (the carrier's service chosen), ``delivery_from`` /
  ``delivery_by`` (a booked delivery window), ``payment_method``.
* ``products``: ``components`` (a kit's bill of materials), ``lot_tracked``;
  ``order_lines.components``: a kit line's components as ordered.
* ``stock_lots``: lot-tracked stock per lot with its expiry; ``lot`` on
  reservations, ledger rows and stock document lines (with ``expires_on``).
* ``warehouses.carriers``: the carriers that collect from a warehouse.
* ``late_steps``: orders that overstayed a step's limit, alerted once.

Columns are added in place (no table is rebuilt): the orders table is the
largest there is.

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-06 22:20:00
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0010'
down_revision = '0009'
branch_labels = None
depends_on = None

_ID = sa.BigInteger().with_variant(sa.Integer(), 'sqlite')


def upgrade() -> None:
    op.create_table('merge_groups',
    sa.Column('id', _ID, autoincrement=True, nullable=False),
    sa.Column('number', sa.String(length=40), nullable=False),
    sa.Column('warehouse', sa.String(length=32), nullable=False),
    sa.Column('customer_id', _ID, nullable=False),
    sa.Column('address_key', sa.String(length=64), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.Column('opened_at', sa.DateTime(), nullable=False),
    sa.Column('closes_at', sa.DateTime(), nullable=False),
    sa.Column('limits', sa.JSON(), nullable=False),
    sa.Column('carrier', sa.String(length=32), nullable=True),
    sa.Column('service', sa.String(length=32), nullable=True),
    sa.Column('registered', sa.Boolean(), nullable=False),
    sa.ForeignKeyConstraint(['customer_id'], ['customers.id'], ),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('number')
    )
    with op.batch_alter_table('merge_groups', schema=None) as batch_op:
        batch_op.create_index('ix_merge_groups_open', ['status', 'customer_id'], unique=False)

    op.create_table('stock_lots',
    sa.Column('warehouse', sa.String(length=32), nullable=False),
    sa.Column('sku', sa.String(length=64), nullable=False),
    sa.Column('lot', sa.String(length=64), nullable=False),
    sa.Column('expires_on', sa.Date(), nullable=True),
    sa.Column('on_hand', sa.Integer(), nullable=False),
    sa.Column('reserved', sa.Integer(), nullable=False),
    sa.CheckConstraint('on_hand >= reserved', name='ck_stock_lot_available'),
    sa.CheckConstraint('reserved >= 0', name='ck_stock_lot_reserved'),
    sa.ForeignKeyConstraint(['sku'], ['products.sku'], ),
    sa.ForeignKeyConstraint(['warehouse'], ['warehouses.code'], ),
    sa.PrimaryKeyConstraint('warehouse', 'sku', 'lot')
    )
    op.create_table('late_steps',
    sa.Column('order_id', _ID, nullable=False),
    sa.Column('step', sa.String(length=24), nullable=False),
    sa.Column('after', sa.String(length=24), nullable=False),
    sa.Column('limit_minutes', sa.Integer(), nullable=False),
    sa.Column('warehouse', sa.String(length=32), nullable=True),
    sa.Column('carrier', sa.String(length=32), nullable=True),
    sa.Column('due_at', sa.DateTime(), nullable=False),
    sa.Column('raised_at', sa.DateTime(), nullable=False),
    sa.Column('resolved_at', sa.DateTime(), nullable=True),
    sa.ForeignKeyConstraint(['order_id'], ['orders.id'], ),
    sa.PrimaryKeyConstraint('order_id', 'step')
    )
    op.add_column('order_lines', sa.Column('components', sa.JSON(), nullable=True))

    op.add_column('orders', sa.Column('service', sa.String(length=32), nullable=True))
    op.add_column('orders', sa.Column('delivery_from', sa.DateTime(), nullable=True))
    op.add_column('orders', sa.Column('delivery_by', sa.DateTime(), nullable=True))
    op.add_column('orders', sa.Column('payment_method', sa.String(length=32), server_default='', nullable=False))
    if op.get_bind().dialect.name == 'sqlite':
        # SQLite adds a column with its reference in place (Alembic would rebuild the table for it); a
        # downgrade leaves it there (see there), so it may be there already.
        if 'merge_group_id' not in {c['name'] for c in sa.inspect(op.get_bind()).get_columns('orders')}:
            op.execute('ALTER TABLE orders ADD COLUMN merge_group_id INTEGER REFERENCES merge_groups (id)')
    else:
        op.add_column('orders', sa.Column('merge_group_id', _ID, sa.ForeignKey('merge_groups.id'), nullable=True))
    op.create_index('ix_orders_merge_group', 'orders', ['merge_group_id'], unique=False)

    op.add_column('products', sa.Column('components', sa.JSON(), server_default=sa.text("'[]'"), nullable=False))
    op.add_column('products', sa.Column('lot_tracked', sa.Boolean(), server_default=sa.false(), nullable=False))

    op.add_column('reservations', sa.Column('lot', sa.String(length=64), nullable=True))

    op.add_column('stock_document_lines', sa.Column('lot', sa.String(length=64), nullable=True))
    op.add_column('stock_document_lines', sa.Column('expires_on', sa.Date(), nullable=True))

    op.add_column('stock_movements', sa.Column('lot', sa.String(length=64), nullable=True))

    op.add_column('warehouses', sa.Column('carriers', sa.JSON(), server_default=sa.text("'[]'"), nullable=False))


def downgrade() -> None:
    sqlite = op.get_bind().dialect.name == 'sqlite'
    for table, column in (('warehouses', 'carriers'), ('stock_movements', 'lot'),
                          ('stock_document_lines', 'expires_on'), ('stock_document_lines', 'lot'),
                          ('reservations', 'lot'), ('products', 'lot_tracked'),
                          ('products', 'components'), ('order_lines', 'components'), ('orders', 'payment_method'),
                          ('orders', 'delivery_by'), ('orders', 'delivery_from'), ('orders', 'service')):
        op.drop_column(table, column)
    op.drop_index('ix_orders_merge_group', table_name='orders')
    if not sqlite:
        op.drop_column('orders', 'merge_group_id')
    else:
        op.execute('UPDATE orders SET merge_group_id = NULL WHERE merge_group_id IS NOT NULL')
    # else it stays, empty: SQLite drops a column with a reference only by rebuilding the table, and every
    # other table refers to orders. Its reference to merge_groups is not enforced once that is gone.
    op.drop_table('late_steps')
    op.drop_table('stock_lots')
    op.drop_index('ix_merge_groups_open', table_name='merge_groups')
    op.drop_table('merge_groups')
