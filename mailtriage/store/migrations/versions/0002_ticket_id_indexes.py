"""index the ticket of raw messages and message references

A merge moves both to the surviving ticket (`UPDATE … WHERE ticket_id = ?`);
without these indexes each merge scanned both tables whole.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-23
"""
from alembic import op


revision = '0002'
down_revision = '0001'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('raw_messages', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_raw_messages_ticket_id'), ['ticket_id'], unique=False)
    with op.batch_alter_table('message_refs', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_message_refs_ticket_id'), ['ticket_id'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('message_refs', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_message_refs_ticket_id'))
    with op.batch_alter_table('raw_messages', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_raw_messages_ticket_id'))
