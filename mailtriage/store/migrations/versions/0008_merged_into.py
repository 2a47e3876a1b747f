"""tickets.merged_into: where mail to a merged ticket goes (#merge, issue 16)

A plain column, no foreign key: on SQLite a constraint would make Alembic's
batch mode rebuild `tickets`, and dropping a table that other rows refer to
fails with foreign_keys=ON. ALTER TABLE ADD/DROP COLUMN needs no rebuild
(SQLite 3.35 and later).

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-04
"""
import sqlalchemy as sa
from alembic import op


revision = '0008'
down_revision = '0007'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column('tickets', sa.Column('merged_into', sa.Integer(), nullable=True))


def downgrade() -> None:
    op.execute("ALTER TABLE tickets DROP COLUMN merged_into")
