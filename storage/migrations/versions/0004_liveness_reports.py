"""A run's heartbeat and whether its interruption has been reported.

`heartbeat_at` lets any replica tell a live run from one whose process died, also on another
host and after a pid is reused; `reported_at` lets exactly one replica post the "interrupted,
resume or abort?" message for a run.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-26
"""

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("runs") as runs:
        runs.add_column(sa.Column("heartbeat_at", sa.DateTime(timezone=True)))
        runs.add_column(sa.Column("reported_at", sa.DateTime(timezone=True)))


def downgrade() -> None:
    with op.batch_alter_table("runs") as runs:
        runs.drop_column("reported_at")
        runs.drop_column("heartbeat_at")
