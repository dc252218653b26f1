"""the incident issue as a channel: each update's GitLab comment text

Revision ID: 0013
Revises: 0011
Create Date: 2026-11-27 12:40:00

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '0013'
down_revision = '0011'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('updates', schema=None) as batch_op:
        batch_op.add_column(sa.Column('text_gitlab', sa.Text(), nullable=False,
                                      server_default=''))


def downgrade():
    with op.batch_alter_table('updates', schema=None) as batch_op:
        batch_op.drop_column('text_gitlab')
