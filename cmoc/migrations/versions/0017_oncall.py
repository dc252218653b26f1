"""reminders follow the on-call CMOC: users' email, PagerDuty's on-call as last read

Revision ID: 0017
Revises: 0016
Create Date: 2026-11-27 13:15:00

"""
from alembic import op
import sqlalchemy as sa



# revision identifiers, used by Alembic.
revision = '0017'
down_revision = '0016'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('users', schema=None) as batch_op:
        batch_op.add_column(sa.Column('email', sa.String(length=255), nullable=True))
        batch_op.create_index('ix_users_email', ['email'], unique=False)
    op.create_table(
        'oncall',
        sa.Column('schedule_id', sa.String(length=64), nullable=False),
        sa.Column('pd_user_id', sa.String(length=64), nullable=True),
        sa.Column('name', sa.String(length=255), nullable=True),
        sa.Column('email', sa.String(length=255), nullable=True),
        sa.Column('shift_start', sa.DateTime(), nullable=True),
        sa.Column('shift_end', sa.DateTime(), nullable=True),
        sa.Column('fetched_at', sa.DateTime(), nullable=True),
        sa.Column('checked_at', sa.DateTime(), nullable=True),
        sa.Column('error', sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint('schedule_id'),
    )


def downgrade():
    op.drop_table('oncall')
    with op.batch_alter_table('users', schema=None) as batch_op:
        batch_op.drop_index('ix_users_email')
        batch_op.drop_column('email')
