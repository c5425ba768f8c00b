"""exchanges and claw-backs: ``aftersales_cases.replacement``, the order an exchange sends the replacement goods
with; ``aftersales_cases.clawed_back``, promotions on the goods kept taken off a case's refund

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
    op.add_column('aftersales_cases', sa.Column('clawed_back', sa.BigInteger(), server_default='0', nullable=False))
    op.create_index('ix_aftersales_replacement', 'aftersales_cases', ['replacement'], unique=False)


def downgrade() -> None:
    op.drop_index('ix_aftersales_replacement', table_name='aftersales_cases')
    op.drop_column('aftersales_cases', 'clawed_back')
    op.drop_column('aftersales_cases', 'replacement')
