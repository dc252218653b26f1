"""actions taken from Slack buttons and the /cmoc slash command

Revision ID: 0016
Revises: 0015
Create Date: 2026-11-27 13:20:00

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '0016'
down_revision = '0015'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        'slack_actions',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('key', sa.String(length=64), nullable=False),
        sa.Column('incident_id', sa.Integer(), nullable=False),
        sa.Column('action', sa.String(length=16), nullable=False),
        sa.Column('user_id', sa.Integer(), nullable=True),
        sa.Column('slack_user_id', sa.String(length=32), nullable=False),
        sa.Column('status', sa.String(length=16), nullable=False),
        sa.Column('detail', sa.Text(), nullable=True),
        sa.Column('update_id', sa.Integer(), nullable=True),
        sa.Column('created_at', sa.DateTime(), nullable=False),
        sa.Column('finished_at', sa.DateTime(), nullable=True),
        sa.ForeignKeyConstraint(['incident_id'], ['incidents.id'],
                                name=op.f('fk_slack_actions_incident_id_incidents'),
                                ondelete='CASCADE'),
        sa.ForeignKeyConstraint(['update_id'], ['updates.id'],
                                name=op.f('fk_slack_actions_update_id_updates'),
                                ondelete='SET NULL'),
        sa.ForeignKeyConstraint(['user_id'], ['users.id'],
                                name=op.f('fk_slack_actions_user_id_users'),
                                ondelete='SET NULL'),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_slack_actions')),
        sa.UniqueConstraint('key', name=op.f('uq_slack_actions_key')),
    )
    with op.batch_alter_table('slack_actions', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_slack_actions_incident_id'), ['incident_id'],
                              unique=False)


def downgrade():
    with op.batch_alter_table('slack_actions', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_slack_actions_incident_id'))
    op.drop_table('slack_actions')
