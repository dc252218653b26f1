"""public record: publish order, delivery leases, reminder look-ups

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-27 09:00:00

Updates get a per-incident publish sequence (each channel posts in that order), replacing the
one-publishing-update-per-incident index: several updates may now be in flight, each channel's
deliveries are worked in order by one runner holding a lease. Reminders remember an unanswered
send so Slack is searched before any resend.
"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '0007'
down_revision = '0006'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('updates', schema=None) as batch_op:
        batch_op.add_column(sa.Column('publish_seq', sa.Integer(), nullable=True))
        batch_op.drop_index('uq_updates_one_publishing',
                            sqlite_where=sa.text("phase = 'publishing'"),
                            postgresql_where=sa.text("phase = 'publishing'"))
    # Number the updates already published, per incident, in the order they were published.
    conn = op.get_bind()
    rows = conn.execute(sa.text(
        "SELECT id, incident_id FROM updates WHERE published_at IS NOT NULL "
        "ORDER BY incident_id, published_at, id")).all()
    seq: dict[int, int] = {}
    for update_id, incident_id in rows:
        seq[incident_id] = seq.get(incident_id, 0) + 1
        conn.execute(sa.text("UPDATE updates SET publish_seq = :seq WHERE id = :id"),
                     {"seq": seq[incident_id], "id": update_id})
    with op.batch_alter_table('updates', schema=None) as batch_op:
        batch_op.create_unique_constraint('uq_updates_publish_seq', ['incident_id', 'publish_seq'])

    with op.batch_alter_table('deliveries', schema=None) as batch_op:
        batch_op.add_column(sa.Column('lease_token', sa.String(length=32), nullable=True))
        batch_op.add_column(sa.Column('lease_until', sa.DateTime(), nullable=True))
        batch_op.add_column(sa.Column('maybe_posted', sa.Boolean(), nullable=False,
                                      server_default=sa.false()))

    with op.batch_alter_table('reminders', schema=None) as batch_op:
        batch_op.add_column(sa.Column('outcome_unknown', sa.Boolean(), nullable=False,
                                      server_default=sa.false()))


def downgrade():
    with op.batch_alter_table('reminders', schema=None) as batch_op:
        batch_op.drop_column('outcome_unknown')
    with op.batch_alter_table('deliveries', schema=None) as batch_op:
        batch_op.drop_column('maybe_posted')
        batch_op.drop_column('lease_until')
        batch_op.drop_column('lease_token')
    with op.batch_alter_table('updates', schema=None) as batch_op:
        batch_op.drop_constraint('uq_updates_publish_seq', type_='unique')
        batch_op.drop_column('publish_seq')
        batch_op.create_index('uq_updates_one_publishing', ['incident_id'], unique=True,
                              sqlite_where=sa.text("phase = 'publishing'"),
                              postgresql_where=sa.text("phase = 'publishing'"))
