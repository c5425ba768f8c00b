"""freight templates and per-line promotions: ``freight_templates`` (master data: zones of regions with the
price of the first weight and of each further step, free above an amount of goods) and
``order_lines.promotions``, the promotions a channel says a line got, as it sent them

Revision ID: 0018
Revises: 0017
Create Date: 2026-12-07 09:15:00
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0018'
down_revision = '0017'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'freight_templates',
        sa.Column('code', sa.String(length=32), nullable=False),
        sa.Column('name', sa.String(length=100), nullable=False),
        sa.Column('currency', sa.String(length=3), nullable=False),
        sa.Column('zones', sa.JSON(), nullable=False),
        sa.Column('free_above', sa.BigInteger(), nullable=True),
        sa.Column('active', sa.Boolean(), nullable=False),
        sa.Column('version', sa.Integer(), nullable=False),
        sa.Column('updated_at', sa.DateTime(), nullable=True),
        sa.PrimaryKeyConstraint('code'),
    )
    op.add_column('order_lines', sa.Column('promotions', sa.JSON(), nullable=True))


def downgrade() -> None:
    op.drop_column('order_lines', 'promotions')
    op.drop_table('freight_templates')
