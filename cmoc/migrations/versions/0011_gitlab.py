"""GitLab: incidents follow their issue, webhook events, threaded notices, shift handovers

Revision ID: 0011
Revises: 0010
Create Date: 2026-11-28 09:00:00

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '0011'
down_revision = '0010'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('incidents', schema=None) as batch_op:
        batch_op.add_column(sa.Column('gitlab_issue', sa.String(length=300), nullable=True))
        batch_op.create_index('ix_incidents_gitlab_issue', ['gitlab_issue'], unique=False)

    with op.batch_alter_table('notices', schema=None) as batch_op:
        batch_op.add_column(sa.Column('parent_id', sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column('after_id', sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column('update_id', sa.Integer(), nullable=True))
        batch_op.create_foreign_key('fk_notices_parent_id_notices', 'notices', ['parent_id'],
                                    ['id'], ondelete='CASCADE')
        batch_op.create_foreign_key('fk_notices_after_id_notices', 'notices', ['after_id'],
                                    ['id'], ondelete='SET NULL')
        batch_op.create_foreign_key('fk_notices_update_id_updates', 'updates', ['update_id'],
                                    ['id'], ondelete='CASCADE')

    op.create_table(
        'gitlab_events',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('event_key', sa.String(length=160), nullable=False),
        sa.Column('received_at', sa.DateTime(), nullable=False),
        sa.Column('issue', sa.String(length=300), nullable=True),
        sa.Column('action', sa.String(length=32), nullable=True),
        sa.Column('outcome', sa.String(length=32), nullable=False),
        sa.Column('detail', sa.JSON(), nullable=False),
        sa.Column('incident_id', sa.Integer(), nullable=True),
        sa.Column('created_for', sa.String(length=300), nullable=True),
        sa.ForeignKeyConstraint(['incident_id'], ['incidents.id'],
                                name=op.f('fk_gitlab_events_incident_id_incidents'),
                                ondelete='SET NULL'),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_gitlab_events')),
        sa.UniqueConstraint('event_key', name=op.f('uq_gitlab_events_event_key')),
        sa.UniqueConstraint('created_for', name=op.f('uq_gitlab_events_created_for')),
    )
    with op.batch_alter_table('gitlab_events', schema=None) as batch_op:
        batch_op.create_index('ix_gitlab_events_received', ['received_at'], unique=False)

    op.create_table(
        'webhook_counters',
        sa.Column('source', sa.String(length=16), nullable=False),
        sa.Column('outcome', sa.String(length=32), nullable=False),
        sa.Column('count', sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint('source', 'outcome', name=op.f('pk_webhook_counters')),
    )

    op.create_table(
        'handovers',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('shift_start', sa.DateTime(), nullable=False),
        sa.Column('shift_end', sa.DateTime(), nullable=False),
        sa.Column('status', sa.String(length=16), nullable=False),
        sa.Column('title', sa.String(length=255), nullable=False),
        sa.Column('body', sa.Text(), nullable=False),
        sa.Column('issue_iid', sa.Integer(), nullable=True),
        sa.Column('issue_url', sa.String(length=500), nullable=True),
        sa.Column('error', sa.Text(), nullable=True),
        sa.Column('attempts', sa.Integer(), nullable=False),
        sa.Column('outcome_unknown', sa.Boolean(), nullable=False),
        sa.Column('lease_until', sa.DateTime(), nullable=True),
        sa.Column('via', sa.String(length=16), nullable=False),
        sa.Column('actor_id', sa.Integer(), nullable=True),
        sa.Column('created_at', sa.DateTime(), nullable=False),
        sa.Column('updated_at', sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(['actor_id'], ['users.id'],
                                name=op.f('fk_handovers_actor_id_users'), ondelete='SET NULL'),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_handovers')),
        sa.UniqueConstraint('shift_start', name=op.f('uq_handovers_shift_start')),
    )


def downgrade():
    op.drop_table('handovers')
    op.drop_table('webhook_counters')
    with op.batch_alter_table('gitlab_events', schema=None) as batch_op:
        batch_op.drop_index('ix_gitlab_events_received')
    op.drop_table('gitlab_events')
    with op.batch_alter_table('notices', schema=None) as batch_op:
        batch_op.drop_constraint('fk_notices_update_id_updates', type_='foreignkey')
        batch_op.drop_constraint('fk_notices_after_id_notices', type_='foreignkey')
        batch_op.drop_constraint('fk_notices_parent_id_notices', type_='foreignkey')
        batch_op.drop_column('update_id')
        batch_op.drop_column('after_id')
        batch_op.drop_column('parent_id')
    with op.batch_alter_table('incidents', schema=None) as batch_op:
        batch_op.drop_index('ix_incidents_gitlab_issue')
        batch_op.drop_column('gitlab_issue')
