"""One running rollback per target, whatever else runs: a drill is a run of its own kind that
is `running` while the upgrade and the rollback it drives run.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-26
"""

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

ONE_ROLLBACK = "status = 'running' AND kind = 'rollback'"
ONE_RUN = "status = 'running'"


def upgrade() -> None:
    _replace_index(ONE_ROLLBACK)


def downgrade() -> None:
    _replace_index(ONE_RUN)


def _replace_index(where: str) -> None:
    op.drop_index("ux_runs_one_running_per_target", table_name="runs")
    op.create_index(
        "ux_runs_one_running_per_target",
        "runs",
        ["target"],
        unique=True,
        sqlite_where=sa.text(where),
        postgresql_where=sa.text(where),
    )
