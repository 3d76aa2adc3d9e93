"""Preflight bookkeeping: checks in a fixed order, each with a result and a reason.

A failed check ends preflight at once (`Refused`), and every check that had not run yet is
listed as "not run" rather than guessed, so a plan always shows the whole list.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from enum import StrEnum
from typing import NoReturn

from bot.errors import RollbotError


class CheckResult(StrEnum):
    PASSED = "passed"
    WARNING = "warning"
    FAILED = "failed"
    ASK = "needs a decision"
    NOT_RUN = "not run"

    @property
    def blocks(self) -> bool:
        """A failed check refuses the plan; a question holds it until a person answers."""
        return self in (CheckResult.FAILED, CheckResult.ASK)


@dataclass(frozen=True)
class Check:
    name: str
    result: CheckResult
    detail: str


class Refused(RollbotError):
    """Stops preflight at a failed check whose dependants cannot be evaluated."""


@dataclass
class Preflight:
    """Collects checks in order; `fail` ends preflight and marks the remaining checks not run."""

    remaining: list[str]
    checks: list[Check] = field(default_factory=list)

    def record(self, name: str, result: CheckResult, detail: str) -> None:
        self.checks.append(Check(name, result, detail))
        if name in self.remaining:
            self.remaining.remove(name)

    def passed(self, name: str, detail: str) -> None:
        self.record(name, CheckResult.PASSED, detail)

    def warn(self, name: str, detail: str) -> None:
        self.record(name, CheckResult.WARNING, detail)

    def fail(self, name: str, detail: str) -> NoReturn:
        self.record(name, CheckResult.FAILED, detail)
        raise Refused

    def ask(self, name: str, question: str) -> NoReturn:
        """Stop here until a person decides; the question carries the facts they need."""
        self.record(name, CheckResult.ASK, question)
        raise Refused

    def not_applicable(self, names: Iterable[str]) -> None:
        """Checks that do not apply to this plan (e.g. restore checks when no restore is needed)."""
        self.remaining = [name for name in self.remaining if name not in set(names)]

    def finish(self) -> tuple[Check, ...]:
        skipped = [Check(name, CheckResult.NOT_RUN, "an earlier check failed") for name in self.remaining]
        return tuple(self.checks + skipped)
