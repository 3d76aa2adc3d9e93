"""Postmortem tickets in Jira after real rollbacks: jira820 behind Prism with Atlassian's v2 spec.

The ticket holds the timeline and the loss report, carries the bad version's logs, and is made
exactly once — also when Jira is down during the rollback and comes back only after rollbot
has been restarted.
"""

from __future__ import annotations

import base64
import json
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote

import pytest
from jira import JIRA

from handlers.ids import ActionId
from storage import RunStatus
from tests.integration.demo import BROKEN, HEALTHY, Deployment, deployment
from tests.integration.slack_harness import (
    BOT_TOKEN,
    INCIDENT_CHANNEL,
    SIGNING_SECRET,
    button,
    serving,
    slack_web_api,
    wait_for,
)
from tests.jiraapi.jira_prism import JiraPrism
from tests.jiraapi.jira_server import PROJECT_KEY, Jira820

SCAN_JIRA_USER = "scanme-jira-user-41d0"
SCAN_JIRA_TOKEN = "scanme-jira-token-e83b"
ENGINE_PASSWORD = "scanme-engine-db-password-77c2"
ENGINE_OWN_SLACK_TOKEN = "xoxb-the-engines-own-token"
# Fields Jira fills in itself (who reported the issue is whoever the credentials name).
JIRA_OWN_FIELDS = {"reporter", "creator", "assignee", "watches", "votes"}
JIRA_CONFIG = {
    "    keep_images: 5": f"    keep_images: 5\ntickets:\n  kind: jira\n  project: {PROJECT_KEY}\n"
    "  issue_type: Task\n  labels: [postmortem]\n"
    # jira820 has no search index lag: a lost create is looked for at once
    "  jira:\n    search_delay_seconds: 0"
}


@pytest.fixture
def jira() -> Iterator[tuple[Jira820, JiraPrism]]:
    with Jira820() as server, JiraPrism(server.url) as prism:
        yield server, prism


def jira_env(prism: JiraPrism, user: str = "rollbot", token: str = "jira-token-for-tests") -> dict[str, str]:
    return {"JIRA_URL": prism.url.rstrip("/"), "JIRA_USER": user, "JIRA_TOKEN": token}


def give_the_engine_secrets_of_its_own(deployed: Deployment) -> None:
    """A password written in the Engine's compose file, and a Slack token it reads from its
    project's `.env` under the same name rollbot's token has; the Engine is restarted with them."""
    text = deployed.compose_file.read_text()
    drain = next(line for line in text.splitlines() if line.strip().startswith("ENGINE_DRAIN_SECONDS:"))
    deployed.compose_file.write_text(
        text.replace(
            drain,
            f'{drain}\n      ENGINE_DB_PASSWORD: "{ENGINE_PASSWORD}"'
            '\n      ENGINE_SLACK_TOKEN: "${SLACK_BOT_TOKEN:-none}"',
        )
    )
    (deployed.folder / ".env").write_text(f"SLACK_BOT_TOKEN={ENGINE_OWN_SLACK_TOKEN}\n")
    deployed.compose("up", "--detach", "engine")
    deployed.wait_for_answer()
    assert f"ENGINE_DB_PASSWORD={ENGINE_PASSWORD}" in deployed.container().attrs["Config"]["Env"]


def secret_forms() -> set[str]:
    """Each secret of the serve test as it could leak: raw, URL-encoded, and the Basic
    credentials (base64 of user:token) that the Jira client sends; and the Engine's password."""
    raw = {BOT_TOKEN, SIGNING_SECRET, SCAN_JIRA_USER, SCAN_JIRA_TOKEN, ENGINE_PASSWORD}
    basic = base64.b64encode(f"{SCAN_JIRA_USER}:{SCAN_JIRA_TOKEN}".encode()).decode()
    return raw | {quote(value, safe="") for value in raw} | {basic, basic.rstrip("=")}


def attachment_text(prism: JiraPrism, key: str, name: str) -> str:
    client = JIRA(server=prism.url.rstrip("/"), basic_auth=("rollbot", "t"), get_server_info=False, max_retries=0)
    [attached] = [a for a in client.issue(key).fields.attachment if a.filename == name]
    return attached.get().decode()


def test_a_brain_rollback_files_one_jira_ticket_with_timeline_loss_and_logs(
    tmp_path: Path, jira: tuple[Jira820, JiraPrism]
) -> None:
    server, prism = jira
    mark = prism.mark()
    with deployment(tmp_path, running=HEALTHY, brain=True, config_edits=JIRA_CONFIG) as deployed:
        deployed.remember(3)
        assert deployed.rollbot("snapshot", "engine", env=jira_env(prism)).returncode == 0
        deployed.deploy(BROKEN)
        deployed.remember(2)

        done = deployed.rollbot(
            "rollback", "engine", HEALTHY, "--yes", "--reason", "brain unreadable", env=jira_env(prism)
        )

        assert done.returncode == 0, done.stdout + done.stderr
        run = deployed.runs()[0]
        [key] = server.issues_labelled(f"rollbot-run-{run.id}")
        assert f"postmortem: {prism.url.rstrip('/')}/browse/{key}" in done.stdout
        issue = server.issue(key)["fields"]
        assert set(issue["labels"]) == {f"rollbot-run-{run.id}", "postmortem"}
        assert issue["issuetype"]["name"] == "Task"
        description = issue["description"]
        assert "h2. Timeline (UTC)" in description and "step swap\\_brain succeeded" in description
        assert (
            "||table||rows added||rows changed||rows deleted||time range of the added rows||" in description
            and "|episodes|2|" in description
        )
        assert "Reason given: brain unreadable" in description
        names = {a["filename"] for a in issue["attachment"]}
        assert {f"engine-{BROKEN}.log", "journal.json", "health.json", f"engine-{BROKEN}.inspect.json"} <= names
        assert f"engine {BROKEN}: ERROR health check failed" in attachment_text(prism, key, f"engine-{BROKEN}.log")
        assert prism.violations(since=mark) == []


def test_jira_down_during_the_rollback_gets_its_ticket_once_after_a_restart(
    tmp_path: Path, jira: tuple[Jira820, JiraPrism]
) -> None:
    server, prism = jira
    with deployment(tmp_path, running=BROKEN, config_edits=JIRA_CONFIG) as deployed:
        server.stop()
        done = deployed.rollbot("rollback", "engine", HEALTHY, "--yes", env=jira_env(prism))

        assert done.returncode == 0, "a ticket never fails a rollback: " + done.stdout + done.stderr
        assert "postmortem ticket pending" in done.stderr
        run = deployed.runs()[0]
        assert run.status is RunStatus.SUCCEEDED
        pending = deployed.rollbot("tickets", env=jira_env(prism))
        assert run.id in pending.stdout and "pending" in pending.stdout

        still_down = deployed.rollbot("tickets", "retry", env=jira_env(prism))
        assert still_down.returncode == 1 and "still pending" in still_down.stdout

        server.start()
        retried = deployed.rollbot("tickets", "retry", env=jira_env(prism))  # a new process: a restart
        assert retried.returncode == 0, retried.stdout + retried.stderr
        [key] = server.issues_labelled(f"rollbot-run-{run.id}")
        assert f"created {key}" in retried.stdout

        again = deployed.rollbot("tickets", "retry", env=jira_env(prism))
        assert "no pending postmortem tickets" in again.stdout
        assert server.issues_labelled(f"rollbot-run-{run.id}") == [key], "exactly once"
        assert "no pending" in deployed.rollbot("tickets", env=jira_env(prism)).stdout


def test_without_jira_the_same_postmortem_lands_as_files(tmp_path: Path) -> None:
    with deployment(tmp_path, running=BROKEN) as deployed:
        assert deployed.rollbot("rollback", "engine", HEALTHY, "--yes").returncode == 0
        run = deployed.runs()[0]
        listing = deployed.rollbot("tickets", "--all")
        assert run.id in listing.stdout and "created" in listing.stdout
        folder = deployed.folder / "postmortems" / run.id
        assert "## Timeline (UTC)" in (folder / "postmortem.md").read_text()
        assert (folder / f"engine-{BROKEN}.log").is_file()


def test_a_ticket_filed_after_the_all_clear_is_linked_in_the_thread(
    tmp_path: Path, jira: tuple[Jira820, JiraPrism]
) -> None:
    """Jira is down when the rollback ends; `rollbot serve` files the ticket when it is back and
    says so in the announcement's thread.

    The same run proves that no secret leaks: the Slack bot token, the signing secret, the Jira
    user and token (and the Basic credentials made of them) are recognisable values, and none
    of them is in the bot's log, in anything it sent to Slack, in the Jira issue or its
    attachments, in any row of its database, or in any evidence or postmortem file."""
    server, jira_prism = jira
    secret_env = jira_env(jira_prism, user=SCAN_JIRA_USER, token=SCAN_JIRA_TOKEN)
    with (
        slack_web_api() as (slack, slack_prism),
        deployment(tmp_path, running=BROKEN, config_edits=JIRA_CONFIG) as deployed,
        serving(deployed, slack, slack_prism, extra_env=secret_env) as bot,
    ):
        give_the_engine_secrets_of_its_own(deployed)
        server.stop()
        bot.command(f"engine {HEALTHY} ticket later", "U0REQUEST1")
        plan = bot.plan_message("ticket later")
        run_id = button(plan, ActionId.APPROVE)["value"]
        bot.click(ActionId.APPROVE, run_id, "U0REQUEST1", plan)
        final = wait_for(
            lambda: next((m for m in slack.messages(INCIDENT_CHANNEL) if "All clear" in str(m)), None),
            120,
            "the all-clear",
        )
        assert "Postmortem" not in str(final), "no ticket exists yet, so none is linked"

        server.start()
        [key] = wait_for(lambda: server.issues_labelled(f"rollbot-run-{run_id}"), 60, "the ticket, once Jira is back")
        announcement = slack.messages(INCIDENT_CHANNEL)[0]
        reply = wait_for(
            lambda: [m for m in slack.thread(INCIDENT_CHANNEL, announcement["ts"]) if key in m["text"]],
            30,
            "the thread reply linking the ticket",
        )
        assert f"/browse/{key}|{key}>" in reply[0]["text"]
        assert server.issues_labelled(f"rollbot-run-{run_id}") == [key]
        wait_for(
            lambda: len(server.issue(key)["fields"].get("attachment") or []) >= 4,
            60,
            "the attachments, which follow the key",
        )

        sources = {
            "the log of rollbot serve": bot.log(),
            "Web API calls and response_url posts": json.dumps([call.params for call in slack.calls]),
            "the Jira issue": json.dumps(
                {field: value for field, value in server.issue(key)["fields"].items() if field not in JIRA_OWN_FIELDS}
            ),
            "the Jira attachments": "\n".join(
                attachment_text(jira_prism, key, attachment["filename"])
                for attachment in server.issue(key)["fields"]["attachment"]
            ),
            "the database (journal, approvals, tickets)": "\n".join(sqlite3.connect(deployed.database).iterdump()),
            "evidence and postmortem files": "\n".join(
                path.read_text(errors="replace")
                for path in sorted(deployed.folder.rglob("*"))
                if path.is_file() and path.suffix in (".json", ".log", ".md")
            ),
        }
        assert all(sources.values()), [name for name, text in sources.items() if not text]
        hits = [(name, form) for name, text in sources.items() for form in secret_forms() if form in text]
        assert hits == [], f"secrets found: {hits}"
        assert '"ENGINE_DB_PASSWORD"' in sources["the Jira attachments"], "the name stays, as evidence"
        started_by_rollbot = deployed.container().attrs["Config"]["Env"]
        assert f"ENGINE_SLACK_TOKEN={ENGINE_OWN_SLACK_TOKEN}" in started_by_rollbot, (
            "the Engine got its own token from its .env, not rollbot's from rollbot's environment"
        )
