"""Issue 14's "done when", end to end: `rollbot serve` rolls back a real Engine whose deployment
carries secrets everywhere `docker inspect` and its logs show them (environment, command line,
healthcheck, labels, log driver options, the log itself), and files its postmortem exactly once,
with its attachments and the link to the Slack announcement, on a Cloud-shaped Jira (email and
API token) and on Jira Data Center with a personal access token (no JIRA_USER). None of the
planted secrets is in any attachment, the ticket's fields or its comments.
"""

from __future__ import annotations

import gzip
import json
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from jira import JIRA

from handlers.ids import ActionId
from tests.integration.demo import BROKEN, HEALTHY, Deployment, deployment
from tests.integration.slack_harness import INCIDENT_CHANNEL, button, serving, slack_web_api, wait_for
from tests.jiraapi import jira_cloud
from tests.jiraapi.jira_cloud import JiraCloud
from tests.jiraapi.jira_prism import JiraPrism
from tests.jiraapi.jira_server import PROJECT_KEY, Jira820

PLANTED = {
    "environment": "planted-env-pgpassword-1f2e",
    "environment (no secret-looking name)": "planted-plain-env-value-3d4c",
    "environment (URL with a / in its password)": "planted/url/pass-5b6a",
    "command line": "planted-cmdline-db-password-7988",
    "healthcheck": "planted-healthcheck-bearer-9a0b",
    "label": "planted-traefik-htpasswd-c1d2",
    "label (Slack webhook)": "B000PLANTED/plantedwebhooke3f4",
    "log driver option": "planted-splunk-token-a5b6",
    "log line (bearer)": "planted-log-bearer-c7d8",
    "log line (password=)": "planted-log-password-e9f0",
}
EXPECTED_ATTACHMENTS = {"journal.json", "health.json", f"engine-{BROKEN}.log", f"engine-{BROKEN}.inspect.json"}


def plant_secrets(deployed: Deployment) -> None:
    """Give the Engine's service secrets in every place the issue's reproduction found one, and
    restart it with them on the bad version (whose logs the ticket carries)."""
    text = deployed.compose_file.read_text()
    drain = next(line for line in text.splitlines() if line.strip().startswith("ENGINE_DRAIN_SECONDS:"))
    p = PLANTED
    service = f"""{drain}
      PGPASSWORD: "{p["environment"]}"
      ENGINE_SETTING: "{p["environment (no secret-looking name)"]}"
      BRAIN_URL: "postgres://engine:{p["environment (URL with a / in its password)"]}@db:5432/brain"
    command: ["sh", "-c", "echo 'connecting with Authorization: Bearer {p["log line (bearer)"]}'; echo 'db password={p["log line (password=)"]}'; exec python3 /app/engine.py", "engine", "--db-password={p["command line"]}"]
    healthcheck:
      test: ["CMD", "true", "-H", "Authorization: Bearer {p["healthcheck"]}"]
      interval: 2s
    labels:
      traefik.http.middlewares.engine-auth.basicauth.users: "admin:{p["label"]}"
      alerts.webhook: "https://hooks.slack.com/services/T000/{p["label (Slack webhook)"]}"
    logging:
      driver: splunk
      options:
        splunk-token: "{p["log driver option"]}"
        splunk-url: "http://127.0.0.1:9"
        splunk-verify-connection: "false\""""
    deployed.compose_file.write_text(text.replace(drain, service))
    deployed.compose("up", "--detach", "engine")
    deployed.wait_for_answer()
    attrs = deployed.container().attrs
    assert f"PGPASSWORD={p['environment']}" in attrs["Config"]["Env"]
    assert attrs["HostConfig"]["LogConfig"]["Config"]["splunk-token"] == p["log driver option"]


def leaks(text: str) -> list[str]:
    return [where for where, value in PLANTED.items() if value in text]


@contextmanager
def a_jira(kind: str, tmp_path: Path) -> Iterator[tuple[dict[str, str], str, object]]:
    """(rollbot's Jira environment, the project key, the server) for one kind of Jira."""
    if kind == "cloud":
        with JiraCloud(index_lag_seconds=1) as cloud:
            yield (
                {"JIRA_URL": cloud.url, "JIRA_USER": "oncall@example.com", "JIRA_TOKEN": "cloud-api-token-1234"},
                jira_cloud.PROJECT_KEY,
                cloud,
            )
        return
    with (
        Jira820(state_path=tmp_path / "j.json", log_path=tmp_path / "j.log") as server,
        JiraPrism(server.url, log_path=tmp_path / "prism.log") as prism,
    ):
        yield (
            {"JIRA_URL": prism.url.rstrip("/"), "JIRA_TOKEN": "dc-personal-access-token-5678"},
            PROJECT_KEY,
            (server, prism),
        )


def ticket_texts(kind: str, server: object, label: str) -> tuple[str, dict[str, str], str, list[str], list[str]]:
    """(the ticket's fields as JSON, its attachments' text by name, its comments, the keys
    labelled, the attachments' names as Jira lists them, repeats included)."""
    if kind == "cloud":
        assert isinstance(server, JiraCloud)
        keys = server.created_with_label(label)
        issue = server.issues[keys[0]]
        files = server.attachment_bytes(keys[0])
        names = server.attachment_names(keys[0])
        comments = "\n".join(issue.comments)
        fields = json.dumps(issue.fields)
    else:
        jira, prism = server  # type: ignore[misc]
        keys = jira.issues_labelled(label)
        raw = jira.issue(keys[0])["fields"]
        client = JIRA(server=prism.url.rstrip("/"), token_auth="t", get_server_info=False, max_retries=0)
        listed = client.issue(keys[0]).fields.attachment
        files = {a.filename: a.get() for a in listed}
        names = [a.filename for a in listed]
        comments = json.dumps(raw.get("comment"))
        fields = json.dumps({name: value for name, value in raw.items() if name not in ("attachment", "comment")})
    texts = {
        name: (gzip.decompress(data) if name.endswith(".gz") else data).decode(errors="replace")
        for name, data in files.items()
    }
    return fields, texts, comments, keys, names


@pytest.mark.parametrize("kind", ["cloud", "datacenter-personal-access-token"])
def test_a_served_rollback_files_one_ticket_with_the_slack_link_and_no_planted_secret(
    kind: str, tmp_path: Path
) -> None:
    jira_kind = "cloud" if kind == "cloud" else "datacenter"
    with a_jira(jira_kind, tmp_path) as (jira_env, project, server):
        edits = {
            "    keep_images: 5": f"    keep_images: 5\ntickets:\n  kind: jira\n  project: {project}\n"
            "  issue_type: Task\n  labels: [postmortem]\n  jira:\n"
            "    search_delay_seconds: 3"
        }
        with (
            slack_web_api() as (slack, slack_prism),
            deployment(tmp_path, running=BROKEN, config_edits=edits) as deployed,
            serving(deployed, slack, slack_prism, extra_env=jira_env) as bot,
        ):
            plant_secrets(deployed)
            bot.command(f"engine {HEALTHY} 5xx since deploy", "U0REQUEST1")
            plan = bot.plan_message("5xx since deploy")
            run_id = button(plan, ActionId.APPROVE)["value"]
            bot.click(ActionId.APPROVE, run_id, "U0REQUEST1", plan)
            wait_for(
                lambda: next((m for m in slack.messages(INCIDENT_CHANNEL) if "All clear" in str(m)), None),
                120,
                "the all-clear",
            )
            label = f"rollbot-run-{run_id}"
            announcement = slack.messages(INCIDENT_CHANNEL)[0]
            wait_for(
                lambda: (
                    "/browse/"
                    in str(slack.messages(INCIDENT_CHANNEL) + slack.thread(INCIDENT_CHANNEL, announcement["ts"]))
                ),
                60,
                "the ticket linked in the all-clear or in the thread",
            )
            fields, attachments, comments, keys, names = wait_for(
                lambda: (
                    (found := ticket_texts(jira_kind, server, label))
                    and set(found[1]) >= EXPECTED_ATTACHMENTS
                    and found
                ),
                60,
                "the ticket with all its attachments",
            )

            assert len(keys) == 1, f"exactly one ticket, not {keys}"
            assert sorted(names) == sorted(EXPECTED_ATTACHMENTS), "each attachment once"
            assert "Slack thread: [the announcement|https://example.slack.com/archives/" in fields, fields[:2000]
            inspect = json.loads(attachments[f"engine-{BROKEN}.inspect.json"])
            assert {"PGPASSWORD", "ENGINE_SETTING", "BRAIN_URL"} <= set(inspect["EnvironmentNames"])
            assert inspect["LogDriver"]["Type"] == "splunk"
            assert "exec python3 /app/engine.py" in " ".join(inspect["Command"])
            assert "connecting with Authorization" in attachments[f"engine-{BROKEN}.log"], "the log is attached"
            scanned = {"the ticket's fields": fields, "its comments": comments, **attachments}
            found = {where: leaks(text) for where, text in scanned.items() if leaks(text)}
            assert found == {}, f"planted secrets found: {found}"
            if jira_kind == "datacenter":
                _, prism = server  # type: ignore[misc]
                assert prism.violations() == []
            else:
                assert isinstance(server, JiraCloud)
                assert not [path for path in server.searched() if path.endswith("/search")]
                assert {auth.split(" ")[0] for auth in server.authorizations} == {"Basic"}
