"""Runs carry a fencing epoch, and an interrupted rollback holds its target like a running one.

`epoch` is bumped by every take-over (start, interrupt, reclaim); a runner's writes name the
epoch they were given, so the database refuses the writes of a runner that was taken over.
The one-run-per-target index now covers interrupted rollbacks too: a new rollback of a target
must wait until the interrupted one is resumed or aborted.

A journal written before this revision may hold a running and an interrupted rollback of one
target at once (the bug this revision closes). The index cannot be built over them, and no
migration should decide which of them is true, so the upgrade stops and names them.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-06
"""

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

OLD_WHERE = "status = 'running' AND kind = 'rollback'"
NEW_WHERE = "status IN ('running', 'interrupted') AND kind = 'rollback'"


def upgrade() -> None:
    _refuse_targets_held_twice()
    # The index goes first: SQLite's batch mode rebuilds the table and need not carry it over.
    op.drop_index("ux_runs_one_running_per_target", table_name="runs")
    with op.batch_alter_table("runs") as runs:
        runs.add_column(sa.Column("epoch", sa.Integer, nullable=False, server_default="0"))
    _create_index(NEW_WHERE)


def downgrade() -> None:
    op.drop_index("ux_runs_one_running_per_target", table_name="runs")
    with op.batch_alter_table("runs") as runs:
        runs.drop_column("epoch")
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


def _refuse_targets_held_twice() -> None:
    rows = (
        op.get_bind()
        .execute(sa.text(f"SELECT target, id, status FROM runs WHERE {NEW_WHERE} ORDER BY target, id"))
        .all()
    )
    by_target: dict[str, list[str]] = {}
    for target, run_id, status in rows:
        by_target.setdefault(target, []).append(f"{run_id} ({status})")
    twice = {target: runs for target, runs in by_target.items() if len(runs) > 1}
    if twice:
        named = "; ".join(f"{target}: {', '.join(runs)}" for target, runs in sorted(twice.items()))
        raise RuntimeError(
            "the journal holds more than one unfinished rollback of a target, which this rollbot "
            f"version refuses: {named}. Abort the interrupted one(s) with the previous rollbot "
            "version (`rollbot abort RUN`) after checking the service, then start this version again."
        )
