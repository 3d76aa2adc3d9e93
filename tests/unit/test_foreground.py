"""Callers first: background work waits while a front end answers callers, runs never wait."""

from __future__ import annotations

import threading
from pathlib import Path

from bot.core.foreground import Foreground
from bot.core.rollbot import Rollbot
from storage import Journal
from tests.unit.fakes import FakeHealth, make_world

LIVENESS = 10  # seconds: only guards against a hang; nothing here asserts how long anything took


def test_quiet_at_once_when_no_caller_was_ever_answered() -> None:
    assert Foreground().wait_for_quiet(patience=0) is True


def test_not_quiet_while_a_caller_is_answered_and_patience_ends_the_wait() -> None:
    foreground = Foreground(settle=0)
    with foreground.answering():
        assert foreground.wait_for_quiet(patience=0) is False


def test_not_quiet_within_the_settle_time_after_an_answer() -> None:
    now = [100.0]
    foreground = Foreground(settle=0.05, clock=lambda: now[0])
    with foreground.answering():
        pass
    assert foreground.wait_for_quiet(patience=0) is False
    now[0] += 0.05
    assert foreground.wait_for_quiet(patience=0) is True


def test_a_waiter_is_released_when_the_last_of_overlapping_answers_ends() -> None:
    foreground = Foreground(settle=0)
    released = threading.Event()
    first, second = foreground.answering(), foreground.answering()
    first.__enter__()
    second.__enter__()
    waiter = threading.Thread(target=lambda: foreground.wait_for_quiet(patience=LIVENESS) and released.set())
    waiter.start()
    first.__exit__(None, None, None)
    assert not released.wait(0.2)
    second.__exit__(None, None, None)
    waiter.join(LIVENESS)
    assert released.is_set()


def test_background_work_waits_for_the_answers_but_a_run_starts_at_once(tmp_path: Path, journal: Journal) -> None:
    world = make_world(tmp_path)
    rollbot = Rollbot(world.config, journal, world.systems(), FakeHealth(world.compose, {"2.3.1"}), patience=LIVENESS)
    planned, ran = threading.Event(), threading.Event()
    try:
        with rollbot.foreground.answering():
            plan = rollbot.background(planned.set)
            run = rollbot.background(ran.set, runs=True)
            run.result(LIVENESS)
            assert ran.is_set() and not planned.wait(0.2)
        plan.result(LIVENESS)
        assert planned.is_set()
    finally:
        rollbot.shutdown()
