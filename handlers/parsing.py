"""The text after `/rollback`, parsed into one command or refused with what was wrong.

/rollback check TARGET
/rollback upgrade TARGET VERSION [reason…]
/rollback clear TARGET VERSION reason…   (a known-bad version may be deployed again)
/rollback                     (no text: the form, see handlers/modal.py)
/rollback TARGET [VERSION [reason…] [--brain restore|keep]]   (no version: the previous good one)
/rollback status
/rollback history [TARGET]
/rollback snapshot TARGET
/rollback drill TARGET BROKEN_TAG
/rollback help
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from bot.errors import InvalidRequest
from bot.planning.brain_plan import BrainChoice
from bot.tags import describe_invalid_tag, is_valid_tag

MAX_TEXT = 2000
MAX_REASON = 500

HELP = """*rollbot* rolls a target back by the runbook: plan, checks, confirmation, live progress.
• `/rollback` — a form: pick the target and the version (the previous good one is preselected), say why
• `/rollback TARGET [VERSION] [reason…]` — plan a rollback, e.g. `/rollback engine 2.3.1 health failing since upgrade`;
  with no version, to the previous good version (the last one rollbot saw healthy)
  add `--brain restore` or `--brain keep` when rollbot asks whether to restore the brain
• `/rollback upgrade TARGET VERSION [reason…]` — upgrade with the same plan and checks: a brain snapshot just before the stop, health watched; if it fails, the rollback is planned at once
• `/rollback clear TARGET VERSION reason…` — a known-bad version (one rolled back from) may be deployed again; say the root cause
• `/rollback check TARGET` — should it be rolled back? health, error rate and latency against the baseline, the eval
• `/rollback status` — each target: version running, health, newest snapshot, a run in progress
• `/rollback history [TARGET]` — past runs
• `/rollback snapshot TARGET` — snapshot the target's brain now
• `/rollback drill TARGET BROKEN_TAG` — the runbook's drill (not in production): snapshot, upgrade to the broken tag, roll back, timed report
• `/rollback help` — this text"""


class CommandKind(StrEnum):
    ROLLBACK = "rollback"
    UPGRADE = "upgrade"
    CLEAR = "clear"
    CHECK = "check"
    FORM = "form"
    STATUS = "status"
    HISTORY = "history"
    SNAPSHOT = "snapshot"
    DRILL = "drill"
    HELP = "help"


@dataclass(frozen=True)
class Command:
    kind: CommandKind
    target: str | None = None
    version: str | None = None  # a rollback without one goes to the previous good version
    reason: str = ""
    brain: BrainChoice = BrainChoice.AUTO


class ParseError(InvalidRequest, ValueError):
    """The text is not a command; the message says why, in one line."""


def parse(text: object) -> Command:
    if not isinstance(text, str):
        raise ParseError("the command text is missing")
    if len(text) > MAX_TEXT:
        raise ParseError(f"the command is {len(text)} characters long; at most {MAX_TEXT}")
    words = text.split()
    if not words:
        return Command(CommandKind.FORM)
    if words[0].lower() == "help":
        return Command(CommandKind.HELP)
    head = words[0].lower()
    if head == "status":
        _no_more(words, 1, "status takes no arguments")
        return Command(CommandKind.STATUS)
    if head == "history":
        _no_more(words, 2, "history takes at most a target")
        return Command(CommandKind.HISTORY, target=words[1] if len(words) > 1 else None)
    if head == "check":
        if len(words) != 2:
            raise ParseError("check needs exactly one target, e.g. `/rollback check engine`")
        return Command(CommandKind.CHECK, target=words[1])
    if head == "snapshot":
        if len(words) != 2:
            raise ParseError("snapshot needs exactly one target, e.g. `/rollback snapshot engine`")
        return Command(CommandKind.SNAPSHOT, target=words[1])
    if head == "drill":
        if len(words) != 3:
            raise ParseError("drill needs a target and the broken tag, e.g. `/rollback drill engine-staging 2.4.0`")
        if not is_valid_tag(words[2]):
            raise ParseError(describe_invalid_tag(words[2]))
        return Command(CommandKind.DRILL, target=words[1], version=words[2])
    if head in ("upgrade", "clear"):
        return _upgrade_or_clear(head, words)
    return _rollback(words)


def _upgrade_or_clear(head: str, words: list[str]) -> Command:
    """`upgrade TARGET VERSION [reason…]`, `clear TARGET VERSION reason…` (a clear must say why)."""
    example = (
        "`/rollback upgrade engine 2.4.0`"
        if head == "upgrade"
        else "`/rollback clear engine 2.4.0 root cause fixed in 2.4.1`"
    )
    if len(words) < 3:
        raise ParseError(f"{head} needs a target and a version, e.g. {example}")
    if not is_valid_tag(words[2]):
        raise ParseError(describe_invalid_tag(words[2]))
    reason = " ".join(words[3:])
    if len(reason) > MAX_REASON:
        raise ParseError(f"the reason is {len(reason)} characters; keep it under {MAX_REASON}")
    if head == "clear" and not reason:
        raise ParseError(f"a clear needs a reason (the root cause), e.g. {example}")
    kind = CommandKind.UPGRADE if head == "upgrade" else CommandKind.CLEAR
    return Command(kind, target=words[1], version=words[2], reason=reason)


def _rollback(words: list[str]) -> Command:
    if len(words) == 1:
        return Command(CommandKind.ROLLBACK, target=words[0])
    target, version, rest = words[0], words[1], words[2:]
    if not is_valid_tag(version):
        raise ParseError(describe_invalid_tag(version))
    brain = BrainChoice.AUTO
    reason_words = []
    index = 0
    while index < len(rest):
        word = rest[index]
        if word == "--brain" or word.startswith("--brain="):
            value = word.partition("=")[2] or (rest[index + 1] if index + 1 < len(rest) else "")
            index += 1 if "=" in word else 2
            try:
                brain = BrainChoice(value.lower())
            except ValueError:
                given = f", not `{_shown(value)}`" if value else ""
                raise ParseError(f"--brain takes restore or keep{given}") from None
            continue
        reason_words.append(word)
        index += 1
    reason = " ".join(reason_words)
    if len(reason) > MAX_REASON:
        raise ParseError(f"the reason is {len(reason)} characters; keep it under {MAX_REASON}")
    return Command(CommandKind.ROLLBACK, target=target, version=version, reason=reason, brain=brain)


def _no_more(words: list[str], allowed: int, message: str) -> None:
    if len(words) > allowed:
        raise ParseError(message)


def _shown(text: str) -> str:
    return text if len(text) <= 40 else text[:37] + "..."
