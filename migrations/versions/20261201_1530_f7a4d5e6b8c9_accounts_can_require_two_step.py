"""accounts can require two-step verification (DESIGN §9, issue 11 item 5)

Revision ID: f7a4d5e6b8c9
Revises: e6f3c4d5a7b8
Create Date: 2026-12-01 15:30:00.000000

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = 'f7a4d5e6b8c9'
down_revision = 'e6f3c4d5a7b8'
branch_labels = None
depends_on = None


def upgrade():
    # Existing accounts keep what they had: the password alone is enough until an owner turns the switch on.
    with op.batch_alter_table('accounts', schema=None) as batch_op:
        batch_op.add_column(sa.Column('two_step_required', sa.Boolean(), server_default=sa.false(), nullable=False))


def downgrade():
    with op.batch_alter_table('accounts', schema=None) as batch_op:
        batch_op.drop_column('two_step_required')
