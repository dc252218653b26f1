"""refused requests from clients not signed in: counted, summarised in the audit log

Revision ID: 0015
Revises: 0014
Create Date: 2026-11-27 13:20:00

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '0015'
down_revision = '0014'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        'refusal_counters',
        sa.Column('kind', sa.String(length=40), nullable=False),
        sa.Column('count', sa.Integer(), nullable=False),
        sa.Column('reported_count', sa.Integer(), nullable=False),
        sa.Column('reported_at', sa.DateTime(), nullable=True),
        sa.PrimaryKeyConstraint('kind'),
    )


def downgrade():
    op.drop_table('refusal_counters')
