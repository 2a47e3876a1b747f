"""tickets.merged_into: where mail to a merged ticket goes (#merge, issue 16)

Revision ID: 0008
Revises: 0005
Create Date: 2026-12-04
"""
import sqlalchemy as sa
from alembic import op


revision = '0008'
down_revision = '0005'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('tickets', schema=None) as batch_op:
        batch_op.add_column(sa.Column('merged_into', sa.Integer(), nullable=True))
        batch_op.create_foreign_key('fk_tickets_merged_into', 'tickets', ['merged_into'], ['id'])


def downgrade() -> None:
    with op.batch_alter_table('tickets', schema=None) as batch_op:
        batch_op.drop_constraint('fk_tickets_merged_into', type_='foreignkey')
        batch_op.drop_column('merged_into')
