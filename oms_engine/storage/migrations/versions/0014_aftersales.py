"""after-sales: ``aftersales_cases`` and their ``aftersales_history``; ``payments.case_number``, the case a
refund is owed for

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-07 03:05:00
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0014'
down_revision = '0013'
branch_labels = None
depends_on = None

_ID = sa.BigInteger().with_variant(sa.Integer(), 'sqlite')


def upgrade() -> None:
    op.create_table('aftersales_cases',
    sa.Column('id', _ID, autoincrement=True, nullable=False),
    sa.Column('number', sa.String(length=40), nullable=False),
    sa.Column('order_id', _ID, nullable=False),
    sa.Column('kind', sa.String(length=16), nullable=False),
    sa.Column('status', sa.String(length=24), nullable=False),
    sa.Column('reason', sa.Text(), nullable=False),
    sa.Column('lines', sa.JSON(), nullable=False),
    sa.Column('amount', sa.BigInteger(), nullable=False),
    sa.Column('currency', sa.String(length=3), nullable=False),
    sa.Column('decision', sa.Text(), nullable=False),
    sa.Column('return_document', sa.String(length=64), nullable=True),
    sa.Column('appeals', sa.Integer(), nullable=False),
    sa.Column('opened_by', sa.String(length=100), nullable=False),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.Column('updated_at', sa.DateTime(), nullable=False),
    sa.ForeignKeyConstraint(['order_id'], ['orders.id'], ),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('number')
    )
    op.create_index('ix_aftersales_order', 'aftersales_cases', ['order_id', 'id'], unique=False)
    op.create_table('aftersales_history',
    sa.Column('id', _ID, autoincrement=True, nullable=False),
    sa.Column('case_id', _ID, nullable=False),
    sa.Column('from_state', sa.String(length=24), nullable=True),
    sa.Column('to_state', sa.String(length=24), nullable=False),
    sa.Column('event', sa.String(length=24), nullable=False),
    sa.Column('actor', sa.String(length=100), nullable=False),
    sa.Column('cause', sa.Text(), nullable=False),
    sa.Column('at', sa.DateTime(), nullable=False),
    sa.ForeignKeyConstraint(['case_id'], ['aftersales_cases.id'], ),
    sa.PrimaryKeyConstraint('id')
    )
    op.create_index('ix_aftersales_history_case', 'aftersales_history', ['case_id', 'id'], unique=False)
    op.add_column('payments', sa.Column('case_number', sa.String(length=40), nullable=True))
    op.create_index('ix_payments_case', 'payments', ['case_number'], unique=False)


def downgrade() -> None:
    op.drop_index('ix_payments_case', table_name='payments')
    op.drop_column('payments', 'case_number')
    op.drop_index('ix_aftersales_history_case', table_name='aftersales_history')
    op.drop_table('aftersales_history')
    op.drop_index('ix_aftersales_order', table_name='aftersales_cases')
    op.drop_table('aftersales_cases')
