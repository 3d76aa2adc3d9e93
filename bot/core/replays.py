"""`rollbot replay RUN --table T`: the bad window's rows of one table, from the forensic copy a
restore kept, back into the live brain — a dry run first, every copied row journaled on the run.

What may be replayed is decided from the run's own record: the brain it restored, the snapshot
it restored from and the forensic copy it kept (its summary). The copy itself is bot/brain/replay.py;
here are the refusals a person reads, the brain's lock, and the journal.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from sqlalchemy.exc import NoResultFound

from bot.brain.facts import BrainError
from bot.brain.replay import Replay, replay_table
from bot.brain.snapshots import brain_lock
from bot.config import Config
from bot.core.queries import Queries
from bot.errors import InvalidRequest
from bot.running.summary import RunSummary
from storage import EventKind, Journal, RunView


class Replays:
    def __init__(self, config: Config, journal: Journal, queries: Queries) -> None:
        self._config = config
        self._journal = journal
        self._queries = queries

    def replay(self, run_id: str, table: str, dry_run: bool, actor: str) -> Replay:
        """Copy (or, dry, count) the rows of `table` the run's restore took out of the live brain.

        Refused, touching nothing, when the run restored no brain, a file it names is gone, a run
        of the target is in progress, a snapshot holds the brain's lock, or the live table's schema
        does not take the rows. The Engine may keep running."""
        run = self._run(run_id)
        live, forensic, snapshot = self._files(run)
        with brain_lock(live, f"a replay of {table} from run {run.id} asked by {actor}"):
            busy = self._queries.runs_in_progress(run.target)
            if busy:
                raise InvalidRequest(f"run {busy[0]} of {run.target} is in progress; replay after it ends")
            kind = EventKind.BRAIN_REPLAY_CHECKED if dry_run else EventKind.BRAIN_REPLAYED
            written: list[Replay] = []

            def journaled(done: Replay) -> None:
                """Every copied row's key on the run's journal, written before the copy commits."""
                self._journal.note(run.id, actor, kind, _details(done))
                written.append(done)

            try:
                done = replay_table(live, forensic, snapshot, table, dry_run, journaled)
            except BrainError as error:
                self._correct(run, written, actor, str(error))
                raise InvalidRequest(f"cannot replay {table} from run {run.id}: {error}") from None
            except BaseException as error:
                self._correct(run, written, actor, f"{type(error).__name__}: {error}")
                raise
            if dry_run:
                journaled(done)
            return done

    def _correct(self, run: RunView, written: list[Replay], actor: str, why: str) -> None:
        """The copy was journaled, then did not commit (SQLite rolled it back): the journal must
        not keep saying those rows were copied."""
        for done in written:
            details = {**_details(replace(done, copied=())), "not_committed": why}
            self._journal.note(run.id, actor, EventKind.BRAIN_REPLAYED, details)

    def _run(self, run_id: str) -> RunView:
        try:
            return self._journal.run(run_id)
        except NoResultFound:
            raise InvalidRequest(f"no run {run_id!r} in the journal (see `rollbot history`)") from None

    def _files(self, run: RunView) -> tuple[Path, Path, Path]:
        """The live brain, the forensic copy and the snapshot of a run that restored the brain."""
        summary = RunSummary.from_dict(run.summary)
        if not summary.forensic_copy or not summary.snapshot:
            raise InvalidRequest(f"run {run.id} restored no brain: it kept no forensic copy to replay from")
        target = self._config.target(run.target)
        if target is None or target.brain is None:
            raise InvalidRequest(f"target {run.target} of run {run.id} has no brain configured now")
        forensic, snapshot = Path(summary.forensic_copy), Path(summary.snapshot)
        for what, path in (
            ("forensic copy", forensic),
            ("snapshot it restored from", snapshot),
            ("live brain", target.brain.path),
        ):
            if not path.is_file():
                raise InvalidRequest(f"the run's {what} is gone ({path}): nothing can be replayed from it")
        return target.brain.path, forensic, snapshot


def _details(replay: Replay) -> dict[str, object]:
    return {
        "table": replay.table,
        "dry_run": replay.dry_run,
        "key": list(replay.key),
        "bad_window": replay.bad_window,
        "copied": len(replay.copied),
        "copied_keys": [list(key) for key in replay.copied],
        "already": replay.already,
        "conflicts": len(replay.conflicts),
        "conflict_keys": [list(key) for key in replay.conflicts],
        "text": replay.describe(),
    }
