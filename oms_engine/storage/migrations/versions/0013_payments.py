"""payments: ``payments`` (each payment and refund, with its serial number) and ``payment_events`` (their
states over time); the payments and refunds orders already record are written into them

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-07 03:00:00
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0013'
down_revision = '0012'
branch_labels = None
depends_on = None

_ID = sa.BigInteger().with_variant(sa.Integer(), 'sqlite')


def upgrade() -> None:
    op.create_table('payments',
    sa.Column('id', _ID, autoincrement=True, nullable=False),
    sa.Column('serial', sa.String(length=40), nullable=False),
    sa.Column('order_id', _ID, nullable=False),
    sa.Column('kind', sa.String(length=8), nullable=False),
    sa.Column('method', sa.String(length=16), nullable=False),
    sa.Column('method_detail', sa.String(length=64), nullable=False),
    sa.Column('amount', sa.BigInteger(), nullable=False),
    sa.Column('currency', sa.String(length=3), nullable=False),
    sa.Column('provider_ref', sa.String(length=128), nullable=True),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('refund_of', sa.String(length=40), nullable=True),
    sa.Column('for_order_id', _ID, nullable=True),
    sa.Column('reason', sa.String(length=300), nullable=False),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.Column('updated_at', sa.DateTime(), nullable=False),
    sa.CheckConstraint('amount > 0', name='ck_payment_amount'),
    sa.ForeignKeyConstraint(['for_order_id'], ['orders.id'], ),
    sa.ForeignKeyConstraint(['order_id'], ['orders.id'], ),
    sa.ForeignKeyConstraint(['refund_of'], ['payments.serial'], ),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('order_id', 'kind', 'provider_ref', name='uq_payment_provider_ref'),
    sa.UniqueConstraint('serial')
    )
    op.create_index('ix_payments_order', 'payments', ['order_id', 'id'], unique=False)
    op.create_table('payment_events',
    sa.Column('id', _ID, autoincrement=True, nullable=False),
    sa.Column('payment', sa.String(length=40), nullable=False),
    sa.Column('at', sa.DateTime(), nullable=False),
    sa.Column('from_status', sa.String(length=16), nullable=True),
    sa.Column('to_status', sa.String(length=16), nullable=False),
    sa.Column('actor', sa.String(length=100), nullable=False),
    sa.Column('note', sa.String(length=300), nullable=False),
    sa.ForeignKeyConstraint(['payment'], ['payments.serial'], ),
    sa.PrimaryKeyConstraint('id')
    )
    op.create_index('ix_payment_events_payment', 'payment_events', ['payment', 'id'], unique=False)
    # What orders recorded so far: one payment per paid order, and a refund owed for what was given back
    # (nobody was ever sent one).
    op.execute("""
        INSERT INTO payments (serial, order_id, kind, method, method_detail, amount, currency, provider_ref, status,
                              refund_of, for_order_id, reason, created_at, updated_at)
        SELECT number || '-P01', id, 'payment', CASE WHEN payment_method = 'cod' THEN 'cod' ELSE 'other' END,
               COALESCE(payment_method, ''), paid_amount, currency, payment_txn, 'captured', NULL, NULL, '',
               COALESCE(paid_at, created_at), COALESCE(paid_at, created_at)
        FROM orders WHERE parent_id IS NULL AND paid_amount > 0""")
    op.execute("""
        INSERT INTO payments (serial, order_id, kind, method, method_detail, amount, currency, provider_ref, status,
                              refund_of, for_order_id, reason, created_at, updated_at)
        SELECT owner.number || '-R' || CASE WHEN ROW_NUMBER() OVER w < 10 THEN '0' ELSE '' END
                   || CAST(ROW_NUMBER() OVER w AS VARCHAR(8)),
               owner.id, 'refund', p.method, p.method_detail, o.refund_amount, o.currency, NULL, 'due', p.serial, o.id,
               'owed before refunds were kept', o.updated_at, o.updated_at
        FROM orders o
        JOIN orders owner ON owner.id = COALESCE(o.parent_id, o.id)
        JOIN payments p ON p.order_id = owner.id AND p.kind = 'payment'
        WHERE o.refund_amount > 0
        WINDOW w AS (PARTITION BY owner.id ORDER BY o.id)""")
    op.execute("""
        INSERT INTO payment_events (payment, at, from_status, to_status, actor, note)
        SELECT serial, created_at, NULL, status, 'migration', 'recorded before payments were kept' FROM payments""")


def downgrade() -> None:
    op.drop_index('ix_payment_events_payment', table_name='payment_events')
    op.drop_table('payment_events')
    op.drop_index('ix_payments_order', table_name='payments')
    op.drop_table('payments')
