"""The postmortem document, rendered from the journal and the captured evidence.

It follows the shape of Google's SRE postmortem template: summary, impact, timeline (UTC),
detection, resolution, action items, supporting information. The document is data; markdown
(file tickets) and Jira wiki markup are two renderings of it, so both say the same thing.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import replace
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote

from bot.brain.external import ExternalEffects
from bot.brain.facts import LossReport, TableLoss
from bot.planning.judgement import Judgement
from bot.ports import Postmortem
from bot.reporting.affected_csv import CSV_NAME as AFFECTED_CSV
from bot.running.summary import RunSummary
from storage import EventKind, RunStatus, RunView, StepStatus


def redacted(pm: Postmortem, redact: Callable[[str], str]) -> Postmortem:
    """The same document with every text through the redactor: a reason typed in Slack or an
    error message may carry a token, and the ticket is read by more people than the channel."""
    return replace(
        pm,
        title=redact(pm.title),
        summary=[*map(redact, pm.summary)],
        impact=[*map(redact, pm.impact)],
        timeline=[(at, redact(what)) for at, what in pm.timeline],
        detection=[*map(redact, pm.detection)],
        resolution=[*map(redact, pm.resolution)],
        action_items=[*map(redact, pm.action_items)],
        supporting=[*map(redact, pm.supporting)],
    )


def build(run: RunView, attachments: list[Path]) -> Postmortem:
    summary_facts = RunSummary.from_dict(run.summary)
    persisting = summary_facts.errors_persist
    partial = run.status is RunStatus.SUCCEEDED and summary_facts.partial
    healthy = f"{run.target} is healthy on {run.to_version}"
    if persisting:
        healthy += f" but errors persist, not an all-clear ({persisting})"
    outcome = {
        RunStatus.SUCCEEDED: (f"{summary_facts.partial_text()}; " if partial else "") + healthy,
        RunStatus.FAILED: f"the rollback failed: {run.error}",
        RunStatus.INTERRUPTED: f"the rollback was interrupted: {run.error}",
    }.get(run.status, run.status.value)
    return Postmortem(
        run_id=run.id,
        title=f"Postmortem: {run.target} ({run.environment or '?'}) rolled back {run.from_version or '?'} → "
        f"{run.to_version} [{'partial' if partial else run.status.value}]",
        summary=[
            f"Target: {run.target} ({run.environment or '?'})",
            f"Versions: {run.from_version or '?'} → {run.to_version}",
            f"Reason given: {run.reason or '(none given)'}",
            f"Outcome: {outcome}",
        ],
        impact=_impact(run, summary_facts),
        loss=_loss(run),
        timeline=_timeline(run, persisting),
        detection=_detection(run),
        resolution=_resolution(run),
        action_items=_action_items(run, persisting),
        supporting=_supporting(run, attachments),
        attachments=attachments,
        slack_link=_slack_link(run),
    )


def _slack_link(run: RunView) -> str | None:
    link = run.context.get("permalink")
    return link if isinstance(link, str) and link.startswith("https://") else None


def _impact(run: RunView, facts: RunSummary) -> list[str]:
    lines = []
    downtime = facts.downtime_seconds
    lines.append(
        f"Downtime during the rollback (drain-stop to healthy): {downtime:.1f}s"
        if isinstance(downtime, (int, float))
        else "Downtime during the rollback: not measured (the run did not reach a healthy state)"
    )
    if facts.forensic_copy:
        snapshot = Path(str(facts.snapshot)).name
        taken = ((run.plan.get("brain") or {}).get("snapshot") or {}).get("taken_at", "?")
        swapped = next((step.started_at for step in run.steps if step.name == "swap_brain"), None)
        lines.append(f"Data-loss window: {taken} (snapshot) → {swapped or '?'} (brain swapped), UTC")
        lines.append(
            f"Data rolled back: the brain was restored from {snapshot}; everything written after it left the "
            f"live brain ({facts.rows_rolled_back} rows, per table below) and is kept in the forensic copy"
        )
        undone = _loss(run)
        if undone:
            lines.append(
                f"Rows the restore undid (counted when the plan was made): {sum(t.rows for t in undone)} added, "
                f"{sum(t.changed for t in undone)} changed (back to the snapshot's values), "
                f"{sum(t.deleted for t in undone)} deleted (back in the brain)"
            )
    else:
        lines.append("Data rolled back: no data rolled back (image only)")
    return lines + _people_and_outside(run)


def _people_and_outside(run: RunView) -> list[str]:
    """Who was affected, what the live brain had lost that the restore brings back, and the
    external effects no rollback undoes: the runbook's "inform affected users", "migrations
    dropped data" and "destructive MCP calls", from the plan and the run's summary."""
    lines = []
    loss = (run.plan.get("brain") or {}).get("loss")
    if loss and RunSummary.from_dict(run.summary).forensic_copy:
        report = LossReport.from_dict(loss)
        if report.affected:
            lines.append(
                f"Who was affected (distinct values per identifying column): {report.who()}; the list is attached as {AFFECTED_CSV}"
            )
        lines += [
            f"Data the live brain had lost since the snapshot (a migration dropped it; the restore brings it back): {table.describe()}"
            for table in report.lost_by_migration
        ]
    external = ExternalEffects.from_dict(run.plan["external"]) if run.plan.get("external") else None
    if external is not None:
        facts = RunSummary.from_dict(run.summary)
        count = facts.external_effects if facts.external_effects is not None else external.count
        lines.append(
            f"External effects not rolled back: {count} destructive call(s) in {external.table}"
            + (f" ({facts.external_detail})" if facts.external_detail else f" since {external.since_shown}")
        )
        lines += [f"External effect not rolled back: {call.describe()}" for call in external.calls]
    return lines


def _loss(run: RunView) -> list[TableLoss]:
    """The plan's loss report, tables the restore touches only; plans journaled before the
    changed/deleted counts read back with zeros there."""
    tables = ((run.plan.get("brain") or {}).get("loss") or {}).get("tables") or []
    return [loss for loss in (TableLoss.from_dict(table) for table in tables) if loss.undone or loss.lost_columns]


def _timeline(run: RunView, errors_persist: str | None) -> list[tuple[datetime, str]]:
    """Each journaled fact a person needs, in order. A run that ended healthy with its errors
    still above the tolerance ends in "errors persist", never in an all-clear it did not post."""
    entries: list[tuple[datetime, str]] = [(run.created_at, f"rollback requested by {run.requester}")]
    for event in run.events:
        entries.extend(_describe_event(event.kind, event.actor, event.outcome, event.details, event.at))
    if errors_persist:
        entries = [
            (at, f"healthy but errors persist, not an all-clear: {errors_persist}") if what == ALL_CLEAR else (at, what)
            for at, what in entries
        ]
    return sorted(entries, key=lambda entry: entry[0])


ALL_CLEAR = "all-clear: healthy"


def _describe_event(
    kind: str, actor: str, outcome: str | None, details: dict[str, Any], at: datetime
) -> list[tuple[datetime, str]]:
    if kind in (EventKind.RUN_PLANNED, EventKind.RUN_REFUSED):
        return [(at, "plan made" + (f", refused: {details.get('refusal')}" if kind == EventKind.RUN_REFUSED else ""))]
    if kind == EventKind.RUN_CONFIRMED:
        return [(at, f"approved by {details.get('by', actor)}")]
    if kind == EventKind.RUN_STARTED:
        return [(at, f"rollback started (approved by {details.get('approver') or actor})")]
    if kind == EventKind.STEP_STARTED:
        return [(at, f"step {details.get('step')} started")]
    if kind == EventKind.STEP_FINISHED:
        error = f": {details.get('error')}" if details.get("error") else ""
        return [(at, f"step {details.get('step')} {outcome}{error}")]
    if kind == EventKind.RUN_FINISHED:
        if outcome == RunStatus.SUCCEEDED and details.get("external_effects"):
            return [
                (at, f"partial rollback: healthy, {details['external_effects']} external effect(s) not rolled back")
            ]
        return [(at, ALL_CLEAR if outcome == RunStatus.SUCCEEDED else f"run {outcome}")]
    if kind == EventKind.RUN_INTERRUPTED:
        return [(at, f"run found interrupted during step {details.get('step')}")]
    return []


def _detection(run: RunView) -> list[str]:
    """The symptom, the evidence block the plan showed (the runbook's criteria, measured, and
    what could not be), how the errors came out of the soak window, and preflight's findings."""
    lines = [f"Reported symptom: {run.reason or '(none given)'}"]
    judged = run.plan.get("judgement")
    if judged:
        judgement = Judgement.from_dict(judged)
        lines.append(f"Verdict when planned: {judgement.headline}")
        lines += [f"Evidence: {line}" for line in judgement.evidence]
    facts = RunSummary.from_dict(run.summary)
    if facts.errors_persist:
        lines.append(f"After the rollback: healthy but errors persist, not an all-clear: {facts.errors_persist}")
    elif facts.recovery:
        lines.append(f"After the rollback: {facts.recovery}")
    for check in run.plan.get("checks", []):
        if check.get("result") in ("warning", "failed", "needs a decision") or check.get("name") in (
            "running container",
            "brain schema",
            "data the restore removes",
        ):
            lines.append(f"Preflight, {check.get('name')} ({check.get('result')}): {check.get('detail')}")
    return lines


def _resolution(run: RunView) -> list[str]:
    lines = [f"{step.name}: {step.status.value}" + (f" — {step.error}" if step.error else "") for step in run.steps]
    if run.next_action:
        lines.append(f"Next: {run.next_action}")
    return lines


def _action_items(run: RunView, errors_persist: str | None) -> list[str]:
    items = [
        f"Find the root cause of the failure of {run.from_version} before any redeploy",
        *(
            [
                f"Find why errors persist on {run.to_version} after the rollback ({errors_persist}): the cause may "
                f"not be {run.from_version} alone"
            ]
            if errors_persist
            else []
        ),
        f"Add a regression eval for this exact failure ({run.reason or 'the reported symptom'})",
        "Review snapshot freshness: take a snapshot before every upgrade",
    ]
    items += [
        f"Fix the failed step {step.name}: {step.error}" for step in run.steps if step.status is StepStatus.FAILED
    ]
    return items


def _supporting(run: RunView, attachments: list[Path]) -> list[str]:
    lines = [f"rollbot run: {run.id}"]
    permalink = _slack_link(run)
    if permalink:
        lines.append(f"Slack thread: {permalink}")
    summary = RunSummary.from_dict(run.summary)
    if summary.forensic_copy:
        lines.append(
            f"Forensic brain copy: {summary.forensic_copy} "
            f"(holds the {summary.rows_rolled_back} rolled-back rows and everything before them)"
        )
    lines += [f"Attached: {path.name}" for path in attachments]
    return lines


def to_markdown(pm: Postmortem) -> str:
    out = [f"# {pm.title}", "", "## Summary", *_bullets(pm.summary), "", "## Impact", *_bullets(pm.impact)]
    if pm.loss:
        out += [
            "",
            "| table | rows added | rows changed | rows deleted | time range of the added rows |",
            "|---|---|---|---|---|",
        ]
        out += [f"| {t.table} | {t.rows} | {t.changed} | {t.deleted} | {_span(t)} |" for t in pm.loss]
    out += ["", "## Timeline (UTC)", *[f"- {at:%Y-%m-%d %H:%M:%S} {what}" for at, what in pm.timeline]]
    out += ["", "## Detection", *_bullets(pm.detection), "", "## Resolution", *_bullets(pm.resolution)]
    out += ["", "## Action items", *[f"- [ ] {item}" for item in pm.action_items]]
    out += [
        "",
        "## Root cause",
        "_To be written by the people who fix it._",
        "",
        "## Lessons learned",
        "_To be written._",
    ]
    out += ["", "## Supporting information", *_bullets(pm.supporting), ""]
    return "\n".join(out)


def to_jira_wiki(pm: Postmortem) -> str:
    out = ["h2. Summary", *_stars(pm.summary), "", "h2. Impact", *_stars(pm.impact)]
    if pm.loss:
        out += ["", "||table||rows added||rows changed||rows deleted||time range of the added rows||"]
        out += [f"|{_wiki(t.table)}|{t.rows}|{t.changed}|{t.deleted}|{_wiki(_span(t)) or ' '}|" for t in pm.loss]
    out += ["", "h2. Timeline (UTC)", *[f"* {at:%Y-%m-%d %H:%M:%S} {_wiki(what)}" for at, what in pm.timeline]]
    out += ["", "h2. Detection", *_stars(pm.detection), "", "h2. Resolution", *_stars(pm.resolution)]
    out += ["", "h2. Action items", *[f"# {_wiki(item)}" for item in pm.action_items]]
    out += [
        "",
        "h2. Root cause",
        "_To be written by the people who fix it._",
        "",
        "h2. Lessons learned",
        "_To be written._",
    ]
    out += ["", "h2. Supporting information"]
    out += [
        f"* Slack thread: [the announcement|{_wiki_url(pm.slack_link)}]"
        if pm.slack_link and line == f"Slack thread: {pm.slack_link}"
        else f"* {_wiki(line)}"
        for line in pm.supporting
    ]
    return "\n".join(out)


def _wiki_url(url: str) -> str:
    """A link target that cannot close the link or open markup: the characters wiki reads
    inside [..|..] are percent-encoded (a permalink has none of them; a forged one might)."""
    return quote(url, safe=":/?&=%#.-_~")


def _span(table: TableLoss) -> str:
    return f"{table.first} … {table.last}" if table.rows and table.first else ""


def _bullets(lines: list[str]) -> list[str]:
    return [f"- {line}" for line in lines]


def _stars(lines: list[str]) -> list[str]:
    return [f"* {_wiki(line)}" for line in lines]


# Every character Jira's wiki renderer gives a meaning to somewhere: *bold* _italic_ -strike-
# +under+ ^sup^ ~sub~ ??cite?? {macro} [link] |table| !image! #list, (x) (/) (i) :) :P ;) emoticons,
# \\ breaks. A backslash before any of them makes it a plain character; a colon only where it
# would start an emoticon, so that "Reason given: ..." stays readable in the raw text.
_WIKI_SPECIAL = re.compile(r"([\\*_\-+^~?{}\[\]|!#()&]|:(?=[PpDd]))")


def _wiki(text: str) -> str:
    """People's text (a reason, an error, a file name) stays text: each character that is
    markup anywhere is escaped, and line breaks (which could start `h1.` or `bq.`) are spaces."""
    return _WIKI_SPECIAL.sub(r"\\\1", " ".join(text.splitlines()))
