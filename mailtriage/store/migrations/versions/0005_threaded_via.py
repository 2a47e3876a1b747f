"""how each inbound message was threaded: messages.threaded_via and thread_evidence

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-03
"""
import sqlalchemy as sa
from alembic import op


revision = '0005'
down_revision = '0004'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('messages', schema=None) as batch_op:
        batch_op.add_column(sa.Column('threaded_via', sa.String(length=20), nullable=True))
        batch_op.add_column(sa.Column('thread_evidence', sa.Text(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('messages', schema=None) as batch_op:
        batch_op.drop_column('thread_evidence')
        batch_op.drop_column('threaded_via')
