"""the customer's language: tickets.language and tickets.language_pending

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-04
"""
import sqlalchemy as sa
from alembic import op


revision = '0012'
down_revision = '0011'
branch_labels = None
depends_on = None


def upgrade() -> None:
    # A plain ADD COLUMN: SQLite does it in place, where a batch would copy and
    # drop `tickets`, which other tables' foreign keys refer to.
    op.add_column('tickets', sa.Column('language', sa.String(length=16), nullable=True))
    op.add_column('tickets', sa.Column('language_pending', sa.String(length=16), nullable=True))


def downgrade() -> None:
    op.drop_column('tickets', 'language_pending')      # SQLite 3.35+ drops a column in place
    op.drop_column('tickets', 'language')
