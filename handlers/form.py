"""The `/rollback` form: a modal instead of flags, and what its submission says.

Typing `/rollback engine 2.3.1 reason --brain restore` mid-incident is fragile (macOS turns
`--brain` into `—brain`, which becomes part of the reason), and nothing proposes a version. The
form offers the configured targets, the versions rollbot knows for each, newest first, with the
previous good one preselected, a field to type another version, and the reason, which a
production target requires. Whether the brain must be restored rollbot decides from the facts;
only when it cannot for the preselected version does the form ask (restore or keep); for any
other version the plan asks with its own buttons if it must.

Pure functions: the view from the core's facts, and the submitted values into a request or field
errors (Slack's `response_action: errors`, keyed by block id). Slack's select options carry at
most 100 entries and 75 characters of text; versions beyond are still reachable by typing them.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from slack_sdk.models.blocks import (
    InputBlock,
    Option,
    OptionGroup,
    PlainTextInputElement,
    PlainTextObject,
    SectionBlock,
    StaticSelectElement,
)
from slack_sdk.models.views import View

from bot.planning.brain_plan import BrainChoice
from bot.planning.previous_good import VersionChoice
from bot.tags import describe_invalid_tag, is_valid_tag
from handlers.ids import FormBlock, ViewId

MAX_OPTIONS = 100  # Slack's limit per select (and per option group)
MAX_REASON = 500


@dataclass(frozen=True)
class TargetChoices:
    """One target as the form offers it: its versions newest first and the previous good one."""

    name: str
    environment: str
    versions: Sequence[str]
    previous: VersionChoice | None
    asks_brain: bool = False  # rollbot cannot tell whether `previous` reads the live brain


@dataclass(frozen=True)
class FormRequest:
    """A valid submission: what `/rollback TARGET VERSION reason` would have said."""

    target: str
    version: str
    reason: str
    channel: str
    brain: BrainChoice = BrainChoice.AUTO


def form_view(targets: Sequence[TargetChoices], channel: str) -> dict[str, Any]:
    """The modal, for `views.open`. The channel the command was typed in rides in the metadata:
    the plan is posted there, exactly as the command would have posted it."""
    first = targets[0]
    options = [Option(value=t.name, text=_clip(f"{t.name} ({t.environment})")) for t in targets[:MAX_OPTIONS]]
    blocks: list[Any] = [
        InputBlock(
            block_id=FormBlock.TARGET,
            label="Target",
            element=StaticSelectElement(
                action_id=FormBlock.TARGET, options=options, initial_option=options[0], placeholder="Target"
            ),
        ),
    ]
    version_select = _version_select(targets)
    if version_select is not None:
        blocks.append(
            InputBlock(
                block_id=FormBlock.VERSION,
                label="Version to roll back to",
                element=version_select,
                optional=True,
                hint=_clip(first.previous.why, 150) if first.previous else "newest first",
            )
        )
    blocks += [
        InputBlock(
            block_id=FormBlock.OTHER_VERSION,
            label="Or type another version",
            element=PlainTextInputElement(action_id=FormBlock.OTHER_VERSION, placeholder="e.g. 2.3.1", max_length=128),
            optional=True,
        ),
        InputBlock(
            block_id=FormBlock.REASON,
            label="Reason (the symptom; required for production)",
            element=PlainTextInputElement(
                action_id=FormBlock.REASON, multiline=True, max_length=MAX_REASON, placeholder="5xx since 2.4.0"
            ),
            optional=True,
        ),
    ]
    if first.asks_brain and first.previous is not None:
        blocks.append(
            InputBlock(
                block_id=FormBlock.BRAIN,
                label=_clip(f"The brain: rollbot cannot tell whether {first.previous.version} reads it", 150),
                element=StaticSelectElement(
                    action_id=FormBlock.BRAIN,
                    placeholder="Restore or keep",
                    options=[
                        Option(value=BrainChoice.RESTORE.value, text="Restore it from the snapshot"),
                        Option(value=BrainChoice.KEEP.value, text="Keep the live brain"),
                    ],
                ),
                optional=True,
                hint="Left empty, the plan asks, with the snapshot and the rows a restore removes.",
            )
        )
    else:
        blocks.append(
            SectionBlock(
                text=PlainTextObject(
                    text="rollbot decides from the facts whether the brain must be restored; when it cannot, "
                    "the plan asks with its buttons."
                )
            )
        )
    view = View(
        type="modal",
        callback_id=ViewId.ROLLBACK_FORM,
        title="Roll back",
        submit="Plan the rollback",
        close="Cancel",
        blocks=blocks,
        private_metadata=json.dumps({"channel": channel}),
    )
    return view.to_dict()


def _version_select(targets: Sequence[TargetChoices]) -> StaticSelectElement | None:
    """One select for all targets: with several, one group per target, each option's value
    naming its target (`engine:2.3.1`; a tag has no colon) so a mismatch is caught on submit."""

    def option(target: TargetChoices, version: str) -> Option:
        good = target.previous is not None and target.previous.version == version
        return Option(value=f"{target.name}:{version}", text=_clip(version + (" (previous good)" if good else "")))

    first = targets[0]
    initial = option(first, first.previous.version) if first.previous else None
    if len(targets) == 1:
        options = [option(first, v) for v in first.versions[:MAX_OPTIONS]]
        if not options:
            return None
        return StaticSelectElement(
            action_id=FormBlock.VERSION, options=options, initial_option=initial, placeholder="Version"
        )
    groups = [
        OptionGroup(label=_clip(t.name), options=[option(t, v) for v in t.versions[:MAX_OPTIONS]])
        for t in targets[:MAX_OPTIONS]
        if t.versions
    ]
    if not groups:
        return None
    return StaticSelectElement(
        action_id=FormBlock.VERSION, option_groups=groups, initial_option=initial, placeholder="Version"
    )


def read_form(
    values: Mapping[str, Mapping[str, Mapping[str, Any]]], metadata: str, environments: Mapping[str, str]
) -> FormRequest | dict[str, str]:
    """The submission as a request, or the field errors to show (block id -> message)."""
    target = _picked(values, FormBlock.TARGET)
    picked = _picked(values, FormBlock.VERSION)
    typed = _typed(values, FormBlock.OTHER_VERSION)
    reason = " ".join(_typed(values, FormBlock.REASON).split())
    errors: dict[str, str] = {}
    if target not in environments:
        errors[FormBlock.TARGET] = "pick one of the configured targets"
    version = typed
    if typed and not is_valid_tag(typed):
        errors[FormBlock.OTHER_VERSION] = _clip(describe_invalid_tag(typed), 150)
    elif not typed:
        of, _, version = picked.rpartition(":")
        if not version:
            errors[FormBlock.VERSION] = "pick a version, or type one below"
        elif of != target:
            errors[FormBlock.VERSION] = f"{version} is a version of {of}, not of {target}"
    if environments.get(target) == "production" and not reason:
        errors[FormBlock.REASON] = "a production rollback needs a reason: the symptom, for the announcement"
    try:
        channel = str(json.loads(metadata or "{}").get("channel") or "")
    except (ValueError, AttributeError):
        channel = ""
    if not channel and not errors:
        errors[FormBlock.TARGET] = "this form lost the channel it was opened in; type /rollback again"
    brain = _picked(values, FormBlock.BRAIN)
    choice = BrainChoice(brain) if brain in (BrainChoice.RESTORE.value, BrainChoice.KEEP.value) else BrainChoice.AUTO
    return errors or FormRequest(target, version, reason, channel, choice)


def _picked(values: Mapping[str, Mapping[str, Mapping[str, Any]]], block: str) -> str:
    option = values.get(block, {}).get(block, {}).get("selected_option") or {}
    return str(option.get("value") or "")


def _typed(values: Mapping[str, Mapping[str, Mapping[str, Any]]], block: str) -> str:
    return str(values.get(block, {}).get(block, {}).get("value") or "").strip()


def _clip(text: str, limit: int = 75) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"
