"""record each recipient of an outgoing mail: its state and the relay's reply

A 4xx to one recipient of several retries that recipient only, and a 5xx
fails that recipient only (RFC 5321); `outbox.deliveries` remembers who
has the mail, so a retry never sends anyone a second copy.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-03
"""
import sqlalchemy as sa
from alembic import op


revision = '0004'
down_revision = '0003'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('outbox', schema=None) as batch_op:
        batch_op.add_column(sa.Column('deliveries', sa.JSON(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('outbox', schema=None) as batch_op:
        batch_op.drop_column('deliveries')
