"""reminders: when a failed reminder may be tried again (Slack's Retry-After honoured)

Revision ID: 0018
Revises: 0017
Create Date: 2026-11-27 16:10:00

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '0018'
down_revision = '0017'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('reminders', schema=None) as batch_op:
        batch_op.add_column(sa.Column('retry_at', sa.DateTime(), nullable=True))


def downgrade():
    with op.batch_alter_table('reminders', schema=None) as batch_op:
        batch_op.drop_column('retry_at')
