"""e-invoices submitted to the tax platform through the outbox

Revision ID: 0020
Revises: 0019
Create Date: 2026-12-07 09:17:00
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0020'
down_revision = '0019'
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Invoices issued before read 'unsubmitted' (the server default fills them in): nothing is queued for them
    # here, so an upgrade does not flood the outbox; `oms invoices submit --all-unsubmitted` sends them when
    # the deployment wants them at the platform.
    op.add_column('invoices', sa.Column('submission', sa.String(length=12), server_default='unsubmitted',
                                        nullable=False))
    op.add_column('invoices', sa.Column('official_no', sa.String(length=64), nullable=True))
    op.add_column('invoices', sa.Column('verification', sa.String(length=300), nullable=True))
    op.add_column('invoices', sa.Column('submission_note', sa.String(length=300), server_default='',
                                        nullable=False))
    op.add_column('invoices', sa.Column('submission_at', sa.DateTime(), nullable=True))


def downgrade() -> None:
    for column in ('submission_at', 'submission_note', 'verification', 'official_no', 'submission'):
        op.drop_column('invoices', column)
