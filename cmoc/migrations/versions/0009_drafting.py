"""drafting: public promise, heads-up, subscriber flags, draft presence

Revision ID: 0009
Revises: 0007
Create Date: 2026-11-28 09:00:00

Incidents remember the next-update time their last public update promised (snoozing past it
needs a confirmation) and whether the CMOC wants a heads-up before due. Updates carry their own
status.io subscriber flags. The drafting page's heartbeat is kept per incident and user, so no
reminder interrupts a CMOC who is writing the update.

(Issue 11. Chained after 0007 on its branch; re-chained after 0008 when merged.)
"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '0009'
down_revision = '0007'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('incidents', schema=None) as batch_op:
        batch_op.add_column(sa.Column('promised_at', sa.DateTime(), nullable=True))
        batch_op.add_column(sa.Column('heads_up', sa.Boolean(), nullable=False,
                                      server_default=sa.true()))
    # Active incidents that already told the public something: the due time is the promise.
    op.execute("UPDATE incidents SET promised_at = next_update_due_at "
               "WHERE resolved_at IS NULL AND last_published_at IS NOT NULL")

    with op.batch_alter_table('updates', schema=None) as batch_op:
        batch_op.add_column(sa.Column('statusio_notify', sa.JSON(), nullable=True))

    op.create_table(
        'draft_presence',
        sa.Column('incident_id', sa.Integer(), nullable=False),
        sa.Column('user_id', sa.Integer(), nullable=False),
        sa.Column('seen_at', sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(['incident_id'], ['incidents.id'],
                                name=op.f('fk_draft_presence_incident_id_incidents'),
                                ondelete='CASCADE'),
        sa.ForeignKeyConstraint(['user_id'], ['users.id'],
                                name=op.f('fk_draft_presence_user_id_users'),
                                ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('incident_id', 'user_id', name=op.f('pk_draft_presence')),
    )


def downgrade():
    op.drop_table('draft_presence')
    with op.batch_alter_table('updates', schema=None) as batch_op:
        batch_op.drop_column('statusio_notify')
    with op.batch_alter_table('incidents', schema=None) as batch_op:
        batch_op.drop_column('heads_up')
        batch_op.drop_column('promised_at')
