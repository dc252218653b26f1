"""server-side sessions and the first-run singleton

Revision ID: 0014
Revises: 0013
Create Date: 2026-11-27 13:20:00

"""
from datetime import UTC, datetime

from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '0014'
down_revision = '0013'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        'user_sessions',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('token_hash', sa.String(length=64), nullable=False),
        sa.Column('user_id', sa.Integer(), nullable=False),
        sa.Column('created_at', sa.DateTime(), nullable=False),
        sa.Column('last_seen_at', sa.DateTime(), nullable=False),
        sa.Column('ended_at', sa.DateTime(), nullable=True),
        sa.Column('end_reason', sa.String(length=32), nullable=True),
        sa.Column('user_agent', sa.String(length=64), nullable=False),
        sa.Column('ip', sa.String(length=64), nullable=True),
        sa.ForeignKeyConstraint(['user_id'], ['users.id'], ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('id'),
        sa.UniqueConstraint('token_hash'),
    )
    op.create_index('ix_user_sessions_user', 'user_sessions', ['user_id', 'ended_at'])
    op.create_table(
        'setup_done',
        sa.Column('id', sa.Integer(), autoincrement=False, nullable=False),
        sa.Column('admin_id', sa.Integer(), nullable=True),
        sa.Column('done_at', sa.DateTime(), nullable=False),
        sa.CheckConstraint('id = 1', name='singleton'),
        sa.ForeignKeyConstraint(['admin_id'], ['users.id'], ondelete='SET NULL'),
        sa.PrimaryKeyConstraint('id'),
    )
    # An instance that already has accounts has done its first run.
    first = op.get_bind().execute(sa.text("SELECT MIN(id) FROM users")).scalar()
    if first is not None:
        done = sa.table('setup_done', sa.column('id', sa.Integer()),
                        sa.column('admin_id', sa.Integer()), sa.column('done_at', sa.DateTime()))
        op.bulk_insert(done, [{'id': 1, 'admin_id': first,
                               'done_at': datetime.now(UTC).replace(tzinfo=None)}])


def downgrade():
    op.drop_table('setup_done')
    op.drop_index('ix_user_sessions_user', table_name='user_sessions')
    op.drop_table('user_sessions')
