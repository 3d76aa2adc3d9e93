"""Upgrades are runs that hold their target like rollbacks; known-bad versions.

An upgrade (`runs.kind = 'upgrade'`) is executed by the same runner as a rollback, so a running
or interrupted upgrade holds its target: the one-run-per-target index now covers both kinds. The
`known_bad` table records the versions rolled back from, until someone clears them with a reason.

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-05
"""

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None

OLD_WHERE = "status IN ('running', 'interrupted') AND kind = 'rollback'"
NEW_WHERE = "status IN ('running', 'interrupted') AND kind IN ('rollback', 'upgrade')"


def upgrade() -> None:
    op.drop_index("ux_runs_one_running_per_target", table_name="runs")
    _create_index(NEW_WHERE)
    op.create_table(
        "known_bad",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("target", sa.String(128), nullable=False),
        sa.Column("version", sa.String(160), nullable=False),
        sa.Column("run_id", sa.String(32), nullable=False),
        sa.Column("reason", sa.Text, nullable=False, server_default=""),
        sa.Column("marked_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("cleared_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("cleared_by", sa.String(256), nullable=True),
        sa.Column("cleared_reason", sa.Text, nullable=True),
    )
    op.create_index("ix_known_bad_target_version", "known_bad", ["target", "version"])


def downgrade() -> None:
    op.drop_index("ix_known_bad_target_version", table_name="known_bad")
    op.drop_table("known_bad")
    op.drop_index("ux_runs_one_running_per_target", table_name="runs")
    _create_index(OLD_WHERE)


def _create_index(where: str) -> None:
    op.create_index(
        "ux_runs_one_running_per_target",
        "runs",
        ["target"],
        unique=True,
        sqlite_where=sa.text(where),
        postgresql_where=sa.text(where),
    )
