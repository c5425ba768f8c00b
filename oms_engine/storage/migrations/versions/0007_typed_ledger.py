"""a typed stock ledger: movements named by their source document, stock valued at average cost

* ``stock.value``: what the units on hand cost, kept by every movement of goods
  in or out at moving average cost (stock/movements.py); never negative.
* ``stock_movements``: ``value_delta``, ``unit_cost`` (goods in at a stated
  cost), ``actor`` and ``note`` (who posted an adjustment and why), and an
  index on ``at`` for the day's movements (appended in time order, so it takes
  its inserts at the end), and a partial one on the opening rows alone.
* The movement types are the source documents' names: ``ship`` becomes
  ``sale_out``, ``return`` ``customer_return``, ``receive`` and ``purchase``
  ``purchase_receipt``, ``adjust`` ``adjustment``.
* ``stock_closings``: a warehouse's stock at the close of each day, per SKU,
  with its value, for finance.
* Balances the ledger does not explain (stock written before every change
  went through it) get one ``opening`` row each, dated now, so that
  ``oms stock verify`` recomputes every balance from the ledger from here on.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-06 21:00:00
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0007'
down_revision = '0006'
branch_labels = None
depends_on = None

RENAMED = {'ship': 'sale_out', 'return': 'customer_return', 'receive': 'purchase_receipt',
           'purchase': 'purchase_receipt', 'adjust': 'adjustment'}


def _stock(metadata: sa.MetaData, *, valued: bool) -> sa.Table:
    # Given in full so that SQLite's copy keeps its checks, keys and WITHOUT ROWID (0005).
    return sa.Table(
        'stock', metadata,
        sa.Column('warehouse', sa.String(length=32), sa.ForeignKey('warehouses.code'), primary_key=True),
        sa.Column('sku', sa.String(length=64), sa.ForeignKey('products.sku'), primary_key=True),
        sa.Column('on_hand', sa.Integer(), nullable=False),
        sa.Column('reserved', sa.Integer(), nullable=False),
        *([sa.Column('value', sa.BigInteger(), server_default='0', nullable=False)] if valued else []),
        sa.CheckConstraint('reserved >= 0', name='ck_stock_reserved'),
        sa.CheckConstraint('on_hand >= reserved', name='ck_stock_available'),
        *([sa.CheckConstraint('value >= 0', name='ck_stock_value')] if valued else []),
    )


def upgrade() -> None:
    bind = op.get_bind()
    if bind.dialect.name == 'sqlite':
        with op.batch_alter_table('stock', recreate='always', copy_from=_stock(sa.MetaData(), valued=False),
                                  table_kwargs={'sqlite_with_rowid': False}) as batch_op:
            batch_op.add_column(sa.Column('value', sa.BigInteger(), server_default='0', nullable=False))
            batch_op.create_check_constraint('ck_stock_value', 'value >= 0')
    else:
        op.add_column('stock', sa.Column('value', sa.BigInteger(), server_default='0', nullable=False))
        op.create_check_constraint('ck_stock_value', 'stock', 'value >= 0')
    with op.batch_alter_table('stock_movements', schema=None) as batch_op:
        batch_op.add_column(sa.Column('value_delta', sa.BigInteger(), server_default='0', nullable=False))
        batch_op.add_column(sa.Column('unit_cost', sa.BigInteger(), nullable=True))
        batch_op.add_column(sa.Column('actor', sa.String(length=100), server_default='', nullable=False))
        batch_op.add_column(sa.Column('note', sa.Text(), server_default='', nullable=False))
        batch_op.create_index('ix_movements_at', ['at'], unique=False)
    op.create_index('ix_movements_opening', 'stock_movements', ['warehouse', 'sku'], unique=False,
                    sqlite_where=sa.text("kind = 'opening'"), postgresql_where=sa.text("kind = 'opening'"))
    op.create_table('stock_closings',
    sa.Column('day', sa.Date(), nullable=False),
    sa.Column('warehouse', sa.String(length=32), nullable=False),
    sa.Column('sku', sa.String(length=64), nullable=False),
    sa.Column('on_hand', sa.Integer(), nullable=False),
    sa.Column('reserved', sa.Integer(), nullable=False),
    sa.Column('value', sa.BigInteger(), nullable=False),
    sa.Column('taken_at', sa.DateTime(), nullable=False),
    sa.PrimaryKeyConstraint('day', 'warehouse', 'sku')
    )
    for old, new in RENAMED.items():
        bind.execute(sa.text("UPDATE stock_movements SET kind = :new WHERE kind = :old"), {"old": old, "new": new})
    bind.execute(sa.text(
        "INSERT INTO stock_movements (warehouse, sku, kind, on_hand_delta, reserved_delta, order_id, document, at, "
        "value_delta, actor, note) "
        "SELECT s.warehouse, s.sku, 'opening', s.on_hand - COALESCE(m.h, 0), s.reserved - COALESCE(m.r, 0), NULL, "
        "'migration:0007', CURRENT_TIMESTAMP, 0, 'oms', 'balance before the typed ledger' "
        "FROM stock s LEFT JOIN (SELECT warehouse, sku, SUM(on_hand_delta) AS h, SUM(reserved_delta) AS r "
        "FROM stock_movements GROUP BY warehouse, sku) m ON m.warehouse = s.warehouse AND m.sku = s.sku "
        "WHERE s.on_hand <> COALESCE(m.h, 0) OR s.reserved <> COALESCE(m.r, 0)"))


def downgrade() -> None:
    bind = op.get_bind()
    op.drop_table('stock_closings')
    bind.execute(sa.text("DELETE FROM stock_movements WHERE document = 'migration:0007'"))
    for old, new in RENAMED.items():
        if old != 'purchase':
            bind.execute(sa.text("UPDATE stock_movements SET kind = :old WHERE kind = :new"), {"old": old, "new": new})
    op.drop_index('ix_movements_opening', table_name='stock_movements')
    with op.batch_alter_table('stock_movements', schema=None) as batch_op:
        batch_op.drop_index('ix_movements_at')
        batch_op.drop_column('note')
        batch_op.drop_column('actor')
        batch_op.drop_column('unit_cost')
        batch_op.drop_column('value_delta')
    if bind.dialect.name == 'sqlite':
        with op.batch_alter_table('stock', recreate='always', copy_from=_stock(sa.MetaData(), valued=True),
                                  table_kwargs={'sqlite_with_rowid': False}) as batch_op:
            batch_op.drop_constraint('ck_stock_value', type_='check')
            batch_op.drop_column('value')
    else:
        op.drop_constraint('ck_stock_value', 'stock', type_='check')
        op.drop_column('stock', 'value')
