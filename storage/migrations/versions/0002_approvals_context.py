"""Approvals and front-end context on runs; at most one running run per target.

The partial unique index makes "one run per target" a fact the database enforces (SQLite and
PostgreSQL both support it), so two clicks, two threads or two replicas cannot both start a
run of the same target.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-26
"""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("runs") as batch:
        batch.add_column(sa.Column("approver", sa.String(256)))
        batch.add_column(sa.Column("context", sa.JSON, nullable=False, server_default="{}"))
    op.create_index(
        "ux_runs_one_running_per_target",
        "runs",
        ["target"],
        unique=True,
        sqlite_where=sa.text("status = 'running'"),
        postgresql_where=sa.text("status = 'running'"),
    )


def downgrade() -> None:
    op.drop_index("ux_runs_one_running_per_target", table_name="runs")
    with op.batch_alter_table("runs") as batch:
        batch.drop_column("context")
        batch.drop_column("approver")
