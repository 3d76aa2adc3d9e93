"""Who may do what to a rollback, and whether a plan's facts still hold at the click.

The rules of the design card: `requesters` (empty = anyone) may ask; an image-only plan is
confirmed by its requester or any approver; a brain restore needs an approver who is not the
requester; a plan expires. Entries in `requesters`/`approvers` are user ids or group ids; the
front end supplies `members_of` to expand a group (for Slack, usergroups.users.list).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

from bot.config import TargetConfig
from bot.planning.plan import Plan

MembersOf = Callable[[str], set[str]]


class Decision(StrEnum):
    CONFIRM = "confirm"
    CANCEL = "cancel"


@dataclass(frozen=True)
class Verdict:
    allowed: bool
    reason: str = ""


def is_one_of(user: str, entries: Iterable[str], members_of: MembersOf) -> bool:
    """`user` is listed directly or through a group it belongs to."""
    return any(user == entry or user in members_of(entry) for entry in entries)


def may_request(user: str, target: TargetConfig, members_of: MembersOf) -> Verdict:
    if not target.requesters or is_one_of(user, target.requesters, members_of):
        return Verdict(True)
    return Verdict(False, f"you are not one of the requesters of {target.name}; ask someone on its on-call rota")


def may_decide(
    user: str, decision: Decision, requester: str, restores_brain: bool, target: TargetConfig, members_of: MembersOf
) -> Verdict:
    approver = is_one_of(user, target.approvers, members_of)
    if decision is Decision.CANCEL:
        if user == requester or approver:
            return Verdict(True)
        return Verdict(False, "only the requester or an approver can cancel this plan")
    if restores_brain:
        if user == requester:
            return Verdict(False, "a brain restore loses data: it needs an approver other than the requester")
        if not approver:
            return Verdict(False, f"a brain restore needs one of the approvers of {target.name}")
        return Verdict(True)
    if user == requester or approver:
        return Verdict(True)
    return Verdict(False, f"only the requester or an approver of {target.name} can confirm this rollback")


def expired(created_at: datetime, now: datetime, ttl_minutes: float) -> bool:
    return now - created_at > timedelta(minutes=ttl_minutes)


def plan_facts(plan: Plan | dict[str, Any]) -> dict[str, Any]:
    """The facts an approval relies on. If any differ at the click, the plan is re-made."""
    data = plan.to_dict() if isinstance(plan, Plan) else plan
    brain = data.get("brain") or {}
    snapshot = brain.get("snapshot") or {}
    loss = brain.get("loss") or {}
    return {
        "running_version": data.get("running_version"),
        "current_image": data.get("current_image"),
        "target_image": data.get("target_image"),
        "container_id": data.get("container_id"),
        "image_source": data.get("image_source"),
        "steps": [step.get("kind") for step in data.get("steps", [])],
        "brain_schema": brain.get("live_schema"),
        "brain_restore": brain.get("restore"),
        "snapshot": (snapshot.get("path"), snapshot.get("checksum")),
        "loss": {table["table"]: table["rows"] for table in loss.get("tables", [])},
    }


def changed_facts(before: dict[str, Any], after: dict[str, Any]) -> list[str]:
    return [key for key in before if before[key] != after.get(key)]
