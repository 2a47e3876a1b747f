"""remember the first look at an IMAP folder: the highest UID then

Mail up to that UID that is older than `history_age` is taken in as history,
also when the first look is interrupted and finished after a restart.

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-03
"""
import sqlalchemy as sa
from alembic import op


revision = '0003'
down_revision = '0002'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('imap_state', schema=None) as batch_op:
        batch_op.add_column(sa.Column('history_until', sa.BigInteger(), server_default='0', nullable=False))


def downgrade() -> None:
    with op.batch_alter_table('imap_state', schema=None) as batch_op:
        batch_op.drop_column('history_until')
