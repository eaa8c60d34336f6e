"""mail outbox indexed by recipient (the people page's refused-mail column, issue 12 item 6)

Revision ID: d1b8e9f0a2c3
Revises: c0a7d8e9f1b2
Create Date: 2026-12-01 18:00:00.000000

"""
from alembic import op


# revision identifiers, used by Alembic.
revision = 'd1b8e9f0a2c3'
down_revision = 'c0a7d8e9f1b2'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('mail_outbox', schema=None) as batch_op:
        batch_op.create_index('ix_mail_outbox_recipient', ['recipient', 'id'], unique=False)


def downgrade():
    with op.batch_alter_table('mail_outbox', schema=None) as batch_op:
        batch_op.drop_index('ix_mail_outbox_recipient')
