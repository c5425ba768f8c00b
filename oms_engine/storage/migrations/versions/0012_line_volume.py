"""line volume: ``order_lines.volume_cm3``, one unit's volume as ordered, so the parcel is weighed without
reading the catalogue again

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-07 02:45:00
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0012'
down_revision = '0011'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column('order_lines', sa.Column('volume_cm3', sa.Integer(), nullable=True))


def downgrade() -> None:
    op.drop_column('order_lines', 'volume_cm3')
