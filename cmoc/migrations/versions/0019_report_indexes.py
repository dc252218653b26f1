"""the communication report: indexes of sent status page and X posts, and of reminders by incident

Revision ID: 0019
Revises: 0018
Create Date: 2026-11-27 16:00:00

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '0019'
down_revision = '0018'
branch_labels = None
depends_on = None

# The report asks of every update of the period whether it reached the public; this partial
# index answers from the index alone (only sent status page and X posts are in it).
PUBLIC_SENT = "status = 'sent' AND channel IN ('statusio', 'twitter')"


def upgrade():
    with op.batch_alter_table('deliveries', schema=None) as batch_op:
        batch_op.create_index('ix_deliveries_public_sent', ['update_id'], unique=False,
                              sqlite_where=sa.text(PUBLIC_SENT),
                              postgresql_where=sa.text(PUBLIC_SENT))
    # The report counts each incident's reminders by status and kind: from this index alone,
    # rather than a scan of every reminder ever sent.
    with op.batch_alter_table('reminders', schema=None) as batch_op:
        batch_op.create_index('ix_reminders_incident_status', ['incident_id', 'status', 'kind'],
                              unique=False)


def downgrade():
    with op.batch_alter_table('reminders', schema=None) as batch_op:
        batch_op.drop_index('ix_reminders_incident_status')
    with op.batch_alter_table('deliveries', schema=None) as batch_op:
        batch_op.drop_index('ix_deliveries_public_sent', sqlite_where=sa.text(PUBLIC_SENT),
                            postgresql_where=sa.text(PUBLIC_SENT))
