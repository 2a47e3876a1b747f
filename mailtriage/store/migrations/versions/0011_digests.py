"""the days a daily digest was sent: digests

A restart (or a second daemon) never sends one day's digest twice.

Revision ID: 0011
Revises: 0009
Create Date: 2026-12-03
"""
import sqlalchemy as sa
from alembic import op


revision = '0011'
down_revision = '0009'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'digests',
        sa.Column('day', sa.Date(), nullable=False),
        sa.Column('calendar', sa.String(length=100), nullable=False),
        sa.Column('sent_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('message_id', sa.String(length=998), nullable=False),
        sa.PrimaryKeyConstraint('day'),
    )


def downgrade() -> None:
    op.drop_table('digests')
