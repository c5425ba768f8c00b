"""master data: products, warehouses, carriers and services, suppliers, channel SKU mappings, with history

* ``products``: barcode, dimensions, usual supplier, active, version.
* ``warehouses``: address, regions served, the WMS connector and its settings
  for this warehouse, active, version.
* ``carriers``, ``carrier_services``, ``suppliers``, ``sku_mappings``: new.
* ``master_changes``: every change to a master record (entity, key, field from
  and to, actor, the file row or request it came from).
* ``master_sync``: the version of each item and supplier a warehouse's WMS was
  sent, so it is sent again once per change.
* ``order_waits``: what an order held for an unmapped SKU or missing stock waits
  for, so a mapping or goods coming in release it (backorders).

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-06 22:10:00
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0008'
down_revision = '0007'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('carriers',
    sa.Column('code', sa.String(length=32), nullable=False),
    sa.Column('name', sa.String(length=100), nullable=False),
    sa.Column('connector', sa.String(length=64), nullable=True),
    sa.Column('settings', sa.JSON(), nullable=False),
    sa.Column('active', sa.Boolean(), nullable=False),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.Column('updated_at', sa.DateTime(), nullable=True),
    sa.PrimaryKeyConstraint('code')
    )
    op.create_table('master_changes',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('entity', sa.String(length=16), nullable=False),
    sa.Column('key', sa.String(length=200), nullable=False),
    sa.Column('action', sa.String(length=16), nullable=False),
    sa.Column('changes', sa.JSON(), nullable=False),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.Column('actor', sa.String(length=100), nullable=False),
    sa.Column('source', sa.String(length=300), nullable=False),
    sa.Column('at', sa.DateTime(), nullable=False),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('master_changes', schema=None) as batch_op:
        batch_op.create_index('ix_master_changes_key', ['entity', 'key', 'id'], unique=False)

    op.create_table('suppliers',
    sa.Column('code', sa.String(length=32), nullable=False),
    sa.Column('name', sa.String(length=200), nullable=False),
    sa.Column('contact', sa.JSON(), nullable=False),
    sa.Column('address', sa.JSON(), nullable=False),
    sa.Column('active', sa.Boolean(), nullable=False),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.Column('updated_at', sa.DateTime(), nullable=True),
    sa.PrimaryKeyConstraint('code')
    )
    op.create_table('carrier_services',
    sa.Column('carrier', sa.String(length=32), nullable=False),
    sa.Column('code', sa.String(length=32), nullable=False),
    sa.Column('name', sa.String(length=100), nullable=False),
    sa.Column('attributes', sa.JSON(), nullable=False),
    sa.Column('active', sa.Boolean(), nullable=False),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.Column('updated_at', sa.DateTime(), nullable=True),
    sa.ForeignKeyConstraint(['carrier'], ['carriers.code'], ),
    sa.PrimaryKeyConstraint('carrier', 'code')
    )
    op.create_table('master_sync',
    sa.Column('warehouse', sa.String(length=32), nullable=False),
    sa.Column('entity', sa.String(length=16), nullable=False),
    sa.Column('key', sa.String(length=64), nullable=False),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.Column('at', sa.DateTime(), nullable=False),
    sa.ForeignKeyConstraint(['warehouse'], ['warehouses.code'], ),
    sa.PrimaryKeyConstraint('warehouse', 'entity', 'key')
    )
    op.create_table('sku_mappings',
    sa.Column('channel', sa.String(length=32), nullable=False),
    sa.Column('channel_sku', sa.String(length=64), nullable=False),
    sa.Column('sku', sa.String(length=64), nullable=False),
    sa.Column('active', sa.Boolean(), nullable=False),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.Column('updated_at', sa.DateTime(), nullable=True),
    sa.ForeignKeyConstraint(['sku'], ['products.sku'], ),
    sa.PrimaryKeyConstraint('channel', 'channel_sku')
    )
    # Plain ADD COLUMN: on SQLite a batch would copy the table, which stock's foreign keys refuse.
    op.add_column('products', sa.Column('barcode', sa.String(length=64), nullable=True))
    op.add_column('products', sa.Column('length_mm', sa.Integer(), server_default='0', nullable=False))
    op.add_column('products', sa.Column('width_mm', sa.Integer(), server_default='0', nullable=False))
    op.add_column('products', sa.Column('height_mm', sa.Integer(), server_default='0', nullable=False))
    op.add_column('products', sa.Column('supplier', sa.String(length=32), nullable=True))
    op.add_column('products', sa.Column('active', sa.Boolean(), server_default=sa.true(), nullable=False))
    op.add_column('products', sa.Column('version', sa.Integer(), server_default='1', nullable=False))
    op.add_column('products', sa.Column('updated_at', sa.DateTime(), nullable=True))

    op.add_column('warehouses', sa.Column('address', sa.JSON(), server_default=sa.text("'{}'"), nullable=False))
    op.add_column('warehouses', sa.Column('regions', sa.JSON(), server_default=sa.text("'[]'"), nullable=False))
    op.add_column('warehouses', sa.Column('wms_connector', sa.String(length=64), nullable=True))
    op.add_column('warehouses', sa.Column('wms_settings', sa.JSON(), server_default=sa.text("'{}'"), nullable=False))
    op.add_column('warehouses', sa.Column('active', sa.Boolean(), server_default=sa.true(), nullable=False))
    op.add_column('warehouses', sa.Column('version', sa.Integer(), server_default='1', nullable=False))
    op.add_column('warehouses', sa.Column('updated_at', sa.DateTime(), nullable=True))
    _order_waits()



def _order_waits() -> None:
    op.create_table('order_waits',
    sa.Column('order_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('kind', sa.String(length=8), nullable=False),
    sa.Column('key', sa.String(length=64), nullable=False),
    sa.Column('ready', sa.Boolean(), nullable=False),
    sa.Column('since', sa.DateTime(), nullable=False),
    sa.ForeignKeyConstraint(['order_id'], ['orders.id'], ),
    sa.PrimaryKeyConstraint('order_id', 'kind', 'key')
    )
    op.create_index('ix_order_waits_key', 'order_waits', ['kind', 'key'], unique=False)
    op.create_index('ix_order_waits_ready', 'order_waits', ['ready', 'order_id'], unique=False)


def _drop_columns(table: str, columns: list[str]) -> None:
    # SQLite drops a column in place (3.35 and later); a batch would copy the table, which the
    # foreign keys pointing at it refuse.
    for column in columns:
        op.execute(f'ALTER TABLE {table} DROP COLUMN {column}')


def downgrade() -> None:
    _drop_columns('warehouses', ['updated_at', 'version', 'active', 'wms_settings', 'wms_connector', 'regions',
                                 'address'])
    _drop_columns('products', ['updated_at', 'version', 'active', 'supplier', 'height_mm', 'width_mm', 'length_mm',
                               'barcode'])
    op.drop_index('ix_order_waits_ready', table_name='order_waits')
    op.drop_index('ix_order_waits_key', table_name='order_waits')
    op.drop_table('order_waits')
    op.drop_table('sku_mappings')
    op.drop_table('master_sync')
    op.drop_table('carrier_services')
    op.drop_table('suppliers')
    with op.batch_alter_table('master_changes', schema=None) as batch_op:
        batch_op.drop_index('ix_master_changes_key')

    op.drop_table('master_changes')
    op.drop_table('carriers')
