"""impact and urgency of a ticket (issue 15, the priority matrix): tickets.impact, tickets.urgency

Revision ID: 0007
Revises: 0005
Create Date: 2026-12-10
"""
import sqlalchemy as sa
from alembic import op


revision = '0007'
down_revision = '0005'
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Plain ADD COLUMN (SQLite has it): a batch copy of `tickets` would drop the
    # table that every other table's foreign keys name.
    op.add_column('tickets', sa.Column('impact', sa.String(length=6), nullable=True))
    op.add_column('tickets', sa.Column('urgency', sa.String(length=6), nullable=True))


def downgrade() -> None:
    op.drop_column('tickets', 'urgency')
    op.drop_column('tickets', 'impact')
