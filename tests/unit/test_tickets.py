"""The postmortem desk: one ticket per run, retried until it exists, never twice, never fatal.

The outbox and its leases run on SQLite and on PostgreSQL: each test runs on both."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from bot.core.rollbot import Rollbot
from bot.planning.plan import RollbackRequest
from bot.ports import Postmortem, Ticket
from bot.reporting.evidence import gather
from bot.reporting.postmortem import build, to_jira_wiki
from bot.reporting.tickets import FileTickets, TicketDesk
from storage import Journal, RunStatus, connect
from storage.tickets import TicketOutbox, TicketStatus

from .fakes import FakeHealth, World


class Clock:
    def __init__(self) -> None:
        self.now = datetime(2026, 11, 26, 5, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now


class FlakyJira:
    """A ticket system that is down for `down` attempts, and whose first successful create
    loses its answer (the issue exists, the caller sees an error): the classic duplicate."""

    def __init__(self, down: int = 0, lose_first_answer: bool = False) -> None:
        self.down = down
        self.lose_first_answer = lose_first_answer
        self.issues: dict[str, Postmortem] = {}
        self.attached: dict[str, list[str]] = {}
        self.creates = 0

    def find(self, postmortem: Postmortem) -> Ticket | None:
        self._maybe_down()
        key = next((k for k, p in self.issues.items() if p.label == postmortem.label), None)
        return Ticket(key, f"https://jira.test/browse/{key}") if key else None

    def create(self, postmortem: Postmortem) -> Ticket:
        self._maybe_down()
        self.creates += 1
        key = f"OPS-{len(self.issues) + 1}"
        self.issues[key] = postmortem
        if self.lose_first_answer:
            self.lose_first_answer = False
            raise TimeoutError("read timed out")
        return Ticket(key, f"https://jira.test/browse/{key}")

    def complete(self, ticket: Ticket, postmortem: Postmortem) -> None:
        self.attached[ticket.key] = [path.name for path in postmortem.attachments]

    def _maybe_down(self) -> None:
        if self.down > 0:
            self.down -= 1
            raise ConnectionError("Jira is down")


@pytest.fixture
def journal(database_url: str) -> Iterator[Journal]:
    """The journal on a fresh database of each backend (overrides the SQLite-only one)."""
    engine = connect(database_url)
    yield Journal(engine)
    engine.dispose()


def finished_run(world: World, journal: Journal) -> str:
    rollbot = Rollbot(world.config, journal, world.systems(), FakeHealth(world.compose, {"2.3.1"}))
    run = rollbot.execute(rollbot.plan(RollbackRequest("engine", "2.3.1", "U0REQUEST", "5xx since deploy")), "cli")
    assert run.status is RunStatus.SUCCEEDED
    return run.id


def desk_for(world: World, journal: Journal, sink: object, clock: Clock) -> TicketDesk:
    outbox = TicketOutbox(journal._sessions.kw["bind"], clock=clock)  # type: ignore[attr-defined]
    return TicketDesk(outbox, sink, journal.run, world.config.evidence_dir)  # type: ignore[arg-type]


def test_file_ticket_holds_the_postmortem_and_the_evidence(world: World, journal: Journal, tmp_path: Path) -> None:
    run_id = finished_run(world, journal)
    desk = desk_for(world, journal, FileTickets(tmp_path / "postmortems"), Clock())
    desk.owe(run_id)
    [result] = desk.process().values()
    assert isinstance(result, Ticket)
    folder = tmp_path / "postmortems" / run_id
    text = (folder / "postmortem.md").read_text()
    assert "## Timeline (UTC)" in text and "step verify_health succeeded" in text
    assert "Reason given: 5xx since deploy" in text
    assert {"journal.json", "health.json", "engine-2.4.0.log", "engine-2.4.0.inspect.json"} <= {
        p.name for p in folder.iterdir()
    }
    assert desk.outbox.get(run_id).status is TicketStatus.CREATED


def test_a_jira_outage_is_retried_with_backoff_until_the_ticket_exists(world: World, journal: Journal) -> None:
    run_id = finished_run(world, journal)
    clock, jira = Clock(), FlakyJira(down=3)
    desk = desk_for(world, journal, jira, clock)
    desk.owe(run_id)
    waits = []
    for _ in range(3):
        assert "Jira is down" in str(desk.process()[run_id])
        owed = desk.outbox.get(run_id)
        waits.append(owed.next_attempt_at - clock.now)
        assert desk.process() == {}, "not retried before its time"
        clock.now = owed.next_attempt_at
    assert waits == [timedelta(seconds=5), timedelta(seconds=10), timedelta(seconds=20)]
    assert isinstance(desk.process()[run_id], Ticket)
    assert jira.creates == 1 and desk.outbox.get(run_id).key == "OPS-1"


def test_a_create_whose_answer_was_lost_is_found_not_repeated(world: World, journal: Journal) -> None:
    run_id = finished_run(world, journal)
    clock, jira = Clock(), FlakyJira(lose_first_answer=True)
    desk = desk_for(world, journal, jira, clock)
    desk.owe(run_id)
    assert "read timed out" in str(desk.process()[run_id])
    clock.now += timedelta(minutes=1)
    ticket = desk.process()[run_id]
    assert isinstance(ticket, Ticket) and ticket.key == "OPS-1"
    assert jira.creates == 1 and len(jira.issues) == 1
    assert jira.attached["OPS-1"], "the attachments were added on the retry"


def test_owed_tickets_survive_a_restart(world: World, journal: Journal, tmp_path: Path) -> None:
    """A new desk on the same database (a new process) picks up what the old one owed."""
    run_id = finished_run(world, journal)
    clock = Clock()
    desk_for(world, journal, FlakyJira(down=1), clock).owe(run_id)
    desk_for(world, journal, FlakyJira(down=1), clock).process()
    clock.now += timedelta(minutes=1)
    fresh = Journal(journal._sessions.kw["bind"])  # type: ignore[attr-defined]
    jira = FlakyJira()
    assert isinstance(desk_for(world, fresh, jira, clock).process()[run_id], Ticket)
    assert jira.creates == 1


def test_two_desks_never_attempt_the_same_ticket_at_once(world: World, journal: Journal) -> None:
    run_id = finished_run(world, journal)
    clock = Clock()
    first, second = desk_for(world, journal, FlakyJira(), clock), desk_for(world, journal, FlakyJira(), clock)
    first.owe(run_id)
    assert first.outbox.claim_due() == [run_id]
    assert second.outbox.claim_due() == [], "leased to the first"
    assert (first.outbox.count(TicketStatus.PENDING), first.outbox.count(TicketStatus.CREATED)) == (1, 0)


def test_desks_claiming_at_the_same_moment_lease_a_ticket_once(
    world: World, journal: Journal, database_url: str
) -> None:
    """Replicas' ticket loops wake together: of eight claims at once, on engines of their own,
    exactly one gets the ticket, and it is owed once however many of them said it was owed."""
    run_id = finished_run(world, journal)
    clock = Clock()
    engines = [connect(database_url) for _ in range(8)]
    outboxes = [TicketOutbox(engine, clock=clock) for engine in engines]
    together = threading.Barrier(len(outboxes))
    claims: list[list[str]] = []
    errors: list[BaseException] = []

    def owe_and_claim(outbox: TicketOutbox) -> None:
        try:
            together.wait(timeout=30)
            outbox.owe(run_id)
            together.wait(timeout=30)
            claims.append(outbox.claim_due())
        except BaseException as error:  # noqa: BLE001 - reported below
            errors.append(error)

    threads = [threading.Thread(target=owe_and_claim, args=(outbox,)) for outbox in outboxes]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert errors == []
    assert sorted(claims) == [[]] * 7 + [[run_id]]
    assert [t.run_id for t in outboxes[0].all()] == [run_id]
    for engine in engines:
        engine.dispose()


def test_wiki_markup_keeps_peoples_text_as_text(world: World, journal: Journal) -> None:
    rollbot = Rollbot(world.config, journal, world.systems(), FakeHealth(world.compose, {"2.3.1"}))
    run = rollbot.execute(rollbot.plan(RollbackRequest("engine", "2.3.1", "U0", "{code}|[link]")), "cli")
    wiki = to_jira_wiki(build(run, []))
    assert "\\{code\\}\\|\\[link\\]" in wiki and "h2. Timeline (UTC)" in wiki


class RateLimited(Exception):
    """What the jira library raises for a 429: the response carries Retry-After."""

    def __init__(self, retry_after: str) -> None:
        super().__init__("HTTP 429")
        self.status_code = 429
        self.response = type("Response", (), {"headers": {"Retry-After": retry_after}})()


def test_jira_429_is_retried_after_the_time_it_asks_for(world: World, journal: Journal) -> None:
    run_id = finished_run(world, journal)
    clock, jira = Clock(), FlakyJira()

    def limited(postmortem: Postmortem) -> Ticket:
        raise RateLimited("120")

    jira.create = limited  # type: ignore[method-assign]  # the first attempt creates: no search before it
    desk = desk_for(world, journal, jira, clock)
    desk.owe(run_id)
    assert "HTTP 429" in str(desk.process()[run_id])
    assert desk.outbox.get(run_id).next_attempt_at - clock.now == timedelta(seconds=120)


def test_evidence_is_not_readable_by_other_users(world: World, journal: Journal) -> None:
    """BUG (issue 12, 6): the evidence folder (the bad version's logs, docker inspect, the compose file
    as it was, the journal) was world-readable. The folder of all runs and each run's are 0700."""
    run_id = finished_run(world, journal)
    evidence = world.config.evidence_dir
    gather(journal.run(run_id), evidence)
    assert evidence.stat().st_mode & 0o777 == 0o700
    assert (evidence / run_id).stat().st_mode & 0o777 == 0o700
    assert {"engine-2.4.0.log", "journal.json"} <= {p.name for p in (evidence / run_id).iterdir()}


class CountingJira(FlakyJira):
    """Counts searches, and refuses the first `refuse_attachments` uploads."""

    def __init__(self, refuse_attachments: int = 0, **kwargs: object) -> None:
        super().__init__(**kwargs)  # type: ignore[arg-type]
        self.finds = 0
        self.refuse_attachments = refuse_attachments

    def find(self, postmortem: Postmortem) -> Ticket | None:
        self.finds += 1
        return super().find(postmortem)

    def complete(self, ticket: Ticket, postmortem: Postmortem) -> None:
        if self.refuse_attachments:
            self.refuse_attachments -= 1
            raise RuntimeError("HTTP 413 on engine-2.4.0.log")
        super().complete(ticket, postmortem)


def test_the_first_attempt_creates_without_searching(world: World, journal: Journal) -> None:
    run_id = finished_run(world, journal)
    jira = CountingJira()
    desk = desk_for(world, journal, jira, Clock())
    desk.owe(run_id)
    assert isinstance(desk.process()[run_id], Ticket)
    assert (jira.creates, jira.finds) == (1, 0), "search is not trusted: it runs only after a lost answer"


def test_a_lost_answer_is_searched_for_only_after_the_index_delay(world: World, journal: Journal) -> None:
    run_id = finished_run(world, journal)
    clock, jira = Clock(), CountingJira(lose_first_answer=True)
    outbox = TicketOutbox(journal._sessions.kw["bind"], clock=clock)  # type: ignore[attr-defined]
    desk = TicketDesk(
        outbox,
        jira,
        journal.run,
        world.config.evidence_dir,  # type: ignore[arg-type]
        search_delay=timedelta(seconds=30),
        clock=clock,
    )
    desk.owe(run_id)
    assert isinstance(desk.process()[run_id], str)
    clock.now += timedelta(seconds=10)
    assert "index" in str(desk.process(force=True)[run_id])
    assert (jira.creates, jira.finds) == (1, 0)
    assert outbox.get(run_id).next_attempt_at == clock.now + timedelta(seconds=20), "due when the delay is over"
    clock.now += timedelta(seconds=20)
    [found] = desk.process().values()
    assert isinstance(found, Ticket) and found.key == "OPS-1"
    assert (jira.creates, jira.finds) == (1, 1)


def test_a_failed_attachment_keeps_the_key_and_the_next_attempt_only_attaches(world: World, journal: Journal) -> None:
    run_id = finished_run(world, journal)
    clock, jira = Clock(), CountingJira(refuse_attachments=1)
    desk = desk_for(world, journal, jira, clock)
    announced: list[str] = []
    desk.on_created(lambda run, ticket: announced.append(ticket.key))
    desk.owe(run_id)
    assert "413" in str(desk.process()[run_id])
    owed = desk.outbox.get(run_id)
    assert (owed.status, owed.key) == (TicketStatus.PENDING, "OPS-1")
    assert announced == ["OPS-1"], "the thread links the ticket while its attachments are still to come"
    assert isinstance(desk.process(force=True)[run_id], Ticket)
    assert (jira.creates, jira.finds) == (1, 0) and announced == ["OPS-1"]
    assert desk.outbox.get(run_id).status is TicketStatus.CREATED


def test_tickets_retry_never_takes_a_ticket_another_worker_holds(world: World, journal: Journal) -> None:
    """`rollbot tickets retry` skips the backoff, not the serve loop's lease: two attempts at
    once would be two creates."""
    run_id = finished_run(world, journal)
    clock = Clock()
    serve_loop = desk_for(world, journal, CountingJira(), clock)
    serve_loop.owe(run_id)
    assert serve_loop.outbox.claim_due() == [run_id]  # the serve loop's attempt is in flight
    retry = desk_for(world, journal, CountingJira(), clock)
    assert retry.process(force=True) == {}
    assert retry.outbox.leased() == [run_id]
    serve_loop.outbox.failed(run_id, "HTTP 503", timedelta(minutes=10))
    assert list(retry.process(force=True)) == [run_id], "once released, retry skips the backoff"


class MisconfiguredJira(FlakyJira):
    def __init__(self, answer: list[str] | Exception) -> None:
        super().__init__()
        self.answer = answer

    def problems(self) -> list[str]:
        if isinstance(self.answer, Exception):
            raise self.answer
        return self.answer


def test_the_desk_reports_ticket_settings_that_cannot_work_one_line_each(world: World, journal: Journal) -> None:
    wrong = ["tickets.issue_type: project OPS has no issue type 'Incident' (it has: Task, Bug)"]
    assert desk_for(world, journal, MisconfiguredJira(wrong), Clock()).problems() == wrong
    [line] = desk_for(world, journal, MisconfiguredJira(ConnectionError("refused")), Clock()).problems()
    assert line.startswith("tickets: the Jira configuration could not be checked") and "refused" in line
    assert desk_for(world, journal, FileTickets(world.config.evidence_dir), Clock()).problems() == []


def test_a_lost_create_that_made_nothing_is_searched_twice_before_a_second_create(
    world: World, journal: Journal
) -> None:
    run_id = finished_run(world, journal)
    clock, jira = Clock(), CountingJira()

    def lost(postmortem: Postmortem) -> Ticket:
        jira.creates += 1
        raise TimeoutError("read timed out")  # nothing was made, but the caller cannot know

    real_create, jira.create = jira.create, lost  # type: ignore[method-assign]
    outbox = TicketOutbox(journal._sessions.kw["bind"], clock=clock)  # type: ignore[attr-defined]
    desk = TicketDesk(
        outbox,
        jira,
        journal.run,
        world.config.evidence_dir,  # type: ignore[arg-type]
        search_delay=timedelta(seconds=30),
        clock=clock,
    )
    desk.owe(run_id)
    desk.process()
    jira.create = real_create  # type: ignore[method-assign]
    clock.now += timedelta(seconds=30)
    assert "index" in str(desk.process(force=True)[run_id]) and jira.finds == 1, "searched once, found nothing"
    assert jira.creates == 1
    clock.now += timedelta(seconds=30)
    assert isinstance(desk.process(force=True)[run_id], Ticket)
    assert (jira.finds, jira.creates) == (2, 2), "searched again, then the second create"
