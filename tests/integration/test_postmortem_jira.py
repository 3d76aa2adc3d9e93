"""Postmortem tickets in Jira after real rollbacks: jira820 behind Prism with Atlassian's v2 spec.

The ticket holds the timeline and the loss report, carries the bad version's logs, and is made
exactly once — also when Jira is down during the rollback and comes back only after rollbot
has been restarted.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from jira import JIRA

from handlers.ids import ActionId
from storage import RunStatus
from tests.integration.demo import BROKEN, HEALTHY, deployment
from tests.integration.slack_harness import INCIDENT_CHANNEL, button, serving, slack_web_api, wait_for
from tests.jiraapi.jira_prism import JiraPrism
from tests.jiraapi.jira_server import PROJECT_KEY, Jira820

JIRA_CONFIG = {"    keep_images: 5": f"    keep_images: 5\ntickets:\n  kind: jira\n  project: {PROJECT_KEY}\n"
                                     "  issue_type: Task\n  labels: [postmortem]"}


@pytest.fixture
def jira() -> Iterator[tuple[Jira820, JiraPrism]]:
    with Jira820() as server, JiraPrism(server.url) as prism:
        yield server, prism


def jira_env(prism: JiraPrism) -> dict[str, str]:
    return {"JIRA_URL": prism.url.rstrip("/"), "JIRA_USER": "rollbot", "JIRA_TOKEN": "jira-token-for-tests"}


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

        done = deployed.rollbot("rollback", "engine", HEALTHY, "--yes", "--reason", "brain unreadable",
                                env=jira_env(prism))

        assert done.returncode == 0, done.stdout + done.stderr
        run = deployed.runs()[0]
        [key] = server.issues_labelled(f"rollbot-run-{run.id}")
        assert f"postmortem: {prism.url.rstrip('/')}/browse/{key}" in done.stdout
        issue = server.issue(key)["fields"]
        assert set(issue["labels"]) == {f"rollbot-run-{run.id}", "postmortem"}
        assert issue["issuetype"]["name"] == "Task"
        description = issue["description"]
        assert "h2. Timeline (UTC)" in description and "step swap_brain succeeded" in description
        assert "||table||rows rolled back||time range||" in description and "|episodes|2|" in description
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
    says so in the announcement's thread."""
    server, jira_prism = jira
    with slack_web_api() as (slack, slack_prism), \
            deployment(tmp_path, running=BROKEN, config_edits=JIRA_CONFIG) as deployed, \
            serving(deployed, slack, slack_prism, extra_env=jira_env(jira_prism)) as bot:
        server.stop()
        bot.command(f"engine {HEALTHY} ticket later", "U0REQUEST1")
        plan = bot.plan_message("ticket later")
        run_id = button(plan, ActionId.APPROVE)["value"]
        bot.click(ActionId.APPROVE, run_id, "U0REQUEST1", plan)
        final = wait_for(lambda: next((m for m in slack.messages(INCIDENT_CHANNEL) if "All clear" in str(m)), None),
                         120, "the all-clear")
        assert "Postmortem" not in str(final), "no ticket exists yet, so none is linked"

        server.start()
        [key] = wait_for(lambda: server.issues_labelled(f"rollbot-run-{run_id}"), 60, "the ticket, once Jira is back")
        announcement = slack.messages(INCIDENT_CHANNEL)[0]
        reply = wait_for(lambda: [m for m in slack.thread(INCIDENT_CHANNEL, announcement["ts"]) if key in m["text"]],
                         30, "the thread reply linking the ticket")
        assert f"/browse/{key}|{key}>" in reply[0]["text"]
        assert server.issues_labelled(f"rollbot-run-{run_id}") == [key]
