"""sessions and grants record how they signed in (RFC 8176 amr values)

Revision ID: e6f3c4d5a7b8
Revises: d5e2b3c4f6a7
Create Date: 2026-12-01 15:00:00.000000

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = 'e6f3c4d5a7b8'
down_revision = 'd5e2b3c4f6a7'
branch_labels = None
depends_on = None


def upgrade():
    # Every session and grant before two-step verification signed in with a password alone.
    with op.batch_alter_table('user_sessions', schema=None) as batch_op:
        batch_op.add_column(sa.Column('auth_methods', sa.String(length=32), server_default='pwd', nullable=False))
    with op.batch_alter_table('oauth_grants', schema=None) as batch_op:
        batch_op.add_column(sa.Column('auth_methods', sa.String(length=32), server_default='pwd', nullable=False))


def downgrade():
    with op.batch_alter_table('oauth_grants', schema=None) as batch_op:
        batch_op.drop_column('auth_methods')
    with op.batch_alter_table('user_sessions', schema=None) as batch_op:
        batch_op.drop_column('auth_methods')
