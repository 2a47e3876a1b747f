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
    with op.batch_alter_table('tickets', schema=None) as batch_op:
        batch_op.add_column(sa.Column('impact', sa.String(length=6), nullable=True))
        batch_op.add_column(sa.Column('urgency', sa.String(length=6), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('tickets', schema=None) as batch_op:
        batch_op.drop_column('urgency')
        batch_op.drop_column('impact')
