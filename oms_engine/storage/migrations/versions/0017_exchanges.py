"""exchanges: ``aftersales_cases.replacement``, the order an exchange sends the replacement goods with

Revision ID: 0017
Revises: 0016
Create Date: 2026-12-07 05:40:00
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0017'
down_revision = '0016'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column('aftersales_cases', sa.Column('replacement', sa.String(length=40), nullable=True))


def downgrade() -> None:
    op.drop_column('aftersales_cases', 'replacement')
