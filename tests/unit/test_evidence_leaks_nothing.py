"""Issue 14, items 3-5: a ticket's evidence withholds every secret it carries, keeps under its
cap, and people's text stays text in Jira's wiki markup."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

from bot.ports import Postmortem
from bot.redaction import REDACTED, TextRedactor
from bot.reporting.attachments import attachable
from bot.reporting.inspect_view import postmortem_inspect, scrubbed_argv
from bot.reporting.postmortem import to_jira_wiki

PLANTED = {
    "env": "planted-env-value-1a2b",
    "pg": "planted-pgpassword-3c4d",
    "arg": "planted-arg-pass/word-5e6f",
    "bearer": "planted-bearer-7a8b9c",
    "logdriver": "planted-splunk-token-0d1e",
    "traefik": "planted-htpasswd-2f3a",
    "webhook": "T000/B000/plantedwebhook4b5c",
    "url": "planted/url/pass-6d7e",
    "rollbots": "rollbots-own-token-8f9a",
}


def engine_inspect() -> dict[str, object]:
    """The shape `docker inspect` gives, with a secret in each place the issue's reproduction found one."""
    return {
        "Id": "c0ffee",
        "Name": "/engine-1",
        "Created": "2026-11-26T05:00:00Z",
        "Image": "sha256:abc",
        "RestartCount": 2,
        "Path": "engine",
        "Args": [f"--db-password={PLANTED['arg']}"],
        "State": {
            "Status": "running",
            "ExitCode": 0,
            "StartedAt": "2026-11-26T05:00:01Z",
            "Health": {
                "Status": "unhealthy",
                "FailingStreak": 3,
                "Log": [
                    {
                        "Start": "s",
                        "End": "e",
                        "ExitCode": 1,
                        "Output": f"401 for Authorization: Bearer {PLANTED['bearer']}",
                    }
                ],
            },
        },
        "Config": {
            "Image": "engine:2.4.0",
            "Env": [
                f"PGPASSWORD={PLANTED['pg']}",
                f"ENGINE_DBPASSWORD={PLANTED['pg']}",
                f"PLAIN={PLANTED['env']}",
                f"BRAIN_URL=postgres://engine:{PLANTED['url']}@db/brain",
            ],
            "Cmd": ["engine", f"--db-password={PLANTED['arg']}", "--api-token", PLANTED["arg"], "--port", "8080"],
            "Healthcheck": {
                "Test": [
                    "CMD-SHELL",
                    f"curl -fsS -H 'Authorization: Bearer {PLANTED['bearer']}' http://localhost:8080/health",
                ],
                "Interval": 5_000_000_000,
            },
            "Labels": {
                "traefik.http.middlewares.a.basicauth.users": f"admin:{PLANTED['traefik']}",
                "com.docker.compose.service": "engine",
                "alerts": f"https://hooks.slack.com/services/{PLANTED['webhook']}",
            },
        },
        "HostConfig": {
            "LogConfig": {
                "Type": "splunk",
                "Config": {"splunk-token": PLANTED["logdriver"], "splunk-url": "https://splunk.example:8088"},
            },
            "RestartPolicy": {"Name": "unless-stopped"},
        },
        "Mounts": [{"Type": "bind", "Source": "/srv/engine/data", "Destination": "/data", "RW": True}],
        "NetworkSettings": {"Ports": {"8080/tcp": [{"HostIp": "127.0.0.1", "HostPort": "8080"}]}},
    }


def leaks(text: str) -> list[str]:
    return [name for name, value in PLANTED.items() if value in text]


def test_inspect_is_an_allow_list_that_keeps_what_a_postmortem_uses() -> None:
    shown = postmortem_inspect(engine_inspect())
    text = json.dumps(shown)
    assert leaks(text) == []
    assert shown["EnvironmentNames"] == ["PGPASSWORD", "ENGINE_DBPASSWORD", "PLAIN", "BRAIN_URL"]
    assert shown["ConfigImage"] == "engine:2.4.0" and shown["RestartCount"] == 2
    assert shown["State"]["Health"]["Status"] == "unhealthy"
    assert shown["Labels"]["com.docker.compose.service"] == "engine"
    assert shown["LogDriver"] == {
        "Type": "splunk",
        "Config": {"splunk-token": REDACTED, "splunk-url": "https://splunk.example:8088"},
    }
    assert shown["Mounts"][0]["Destination"] == "/data"
    assert "--port" in shown["Command"] and "8080" in shown["Command"]
    assert "http://localhost:8080/health" in shown["Healthcheck"]["Test"][1]


def test_command_lines_lose_flag_values_and_curl_credentials() -> None:
    argv = ["curl", "-u", "admin:pw-planted", "--token", "tok-planted", "--password=pw2-planted", "http://x/health"]
    assert scrubbed_argv(argv) == [
        "curl",
        "-u",
        REDACTED,
        "--token",
        REDACTED,
        f"--password={REDACTED}",
        "http://x/health",
    ]


def test_text_redactor_knows_rollbots_secrets_and_common_shapes() -> None:
    redact = TextRedactor([PLANTED["rollbots"]])
    lines = [
        f"jira said no to {PLANTED['rollbots']}",
        f"GET / Authorization: Bearer {PLANTED['bearer']}",
        f"connecting to postgres://engine:{PLANTED['url']}@db:5432/brain",
        f"password={PLANTED['env']} token: {PLANTED['pg']} secret={PLANTED['traefik']}",
        f"ENGINE_DBPASSWORD={PLANTED['pg']}",
        f"posting to https://hooks.slack.com/services/{PLANTED['webhook']}",
    ]
    assert [leaks(redact(line)) for line in lines] == [[]] * len(lines)
    assert redact("engine 2.4.0 started on :8080, 12 rows") == "engine 2.4.0 started on :8080, 12 rows"


def test_a_log_over_the_cap_is_redacted_cut_in_the_middle_and_gzipped(tmp_path: Path) -> None:
    log = tmp_path / "engine-2.4.0.log"
    head = [f"starting, PGPASSWORD={PLANTED['pg']}\n"] + [f"boot line {n}\n" for n in range(100)]
    middle = [f"noise line {n} {'x' * 80}\n" for n in range(20_000)]
    tail = [f"fatal: Authorization: Bearer {PLANTED['bearer']} refused\n", "last line\n"]
    log.write_text("".join(head + middle + tail))
    out = tmp_path / "attachments"
    out.mkdir()
    cap = 64 * 1024
    copy = attachable(log, out, TextRedactor(), cap)
    assert copy.name == "engine-2.4.0.log.gz"
    text = gzip.decompress(copy.read_bytes()).decode()
    assert len(text.encode()) <= cap
    assert "boot line 0" in text and "last line" in text and "rollbot cut" in text
    assert leaks(text) == []
    assert log.stat().st_size > 1_000_000, "the full log stays on rollbot's host"


def test_a_small_json_attachment_stays_plain_valid_json_without_secrets(tmp_path: Path) -> None:
    source = tmp_path / "journal.json"
    source.write_text(
        json.dumps(
            {
                "run": {"reason": f"token={PLANTED['env']}", "api_key": PLANTED["pg"]},
                "steps": [{"detail": {"url": f"https://u:{PLANTED['url']}@h/"}}],
            }
        )
    )
    (tmp_path / "attachments").mkdir()
    copy = attachable(source, tmp_path / "attachments", TextRedactor(), 1024 * 1024)
    assert copy.name == "journal.json"
    data = json.loads(copy.read_text())
    assert data["run"]["api_key"] == REDACTED
    assert leaks(copy.read_text()) == []


def test_wiki_markup_escapes_every_markup_character_and_line_break() -> None:
    hostile = (
        "(x) *bold* _it_ -strike- +u+ ^s^ ~t~ ??c?? {code} [link|http://e] |cell| !http://evil/x.png! #1 :) :P\nh1. Big"
    )
    pm = Postmortem(
        run_id="r1",
        title="t",
        summary=[hostile],
        impact=[],
        loss=[],
        timeline=[],
        detection=[],
        resolution=[],
        action_items=["fix it"],
        supporting=[],
    )
    wiki = to_jira_wiki(pm)
    line = next(line for line in wiki.splitlines() if "bold" in line)
    unescaped = [c for i, c in enumerate(line[2:], start=2) if c in "*_-+^~?{}[]|!#()" and line[i - 1] != "\\"]
    assert unescaped == []
    assert "\\:P" in line and "http\\://" not in line, "a colon is escaped only where it starts an emoticon"
    assert "\nh1. Big" not in wiki
    assert "(x)" not in wiki.replace("\\(x\\)", ""), "action items are no red crosses"
    assert "# fix it" in wiki


def test_the_slack_announcement_is_a_link_in_the_ticket_and_a_forged_one_cannot_break_out() -> None:
    link = "https://example.slack.com/archives/C0INCIDENT/p1764900000000100"
    pm = Postmortem(
        run_id="r1",
        title="t",
        summary=[],
        impact=[],
        loss=[],
        timeline=[],
        detection=[],
        resolution=[],
        action_items=[],
        supporting=["rollbot run: r1", f"Slack thread: {link}"],
        slack_link=link,
    )
    assert f"* Slack thread: [the announcement|{link}]" in to_jira_wiki(pm)
    forged = "https://example.slack.com/x]|[evil|http://evil!"
    pm = Postmortem(
        run_id="r1",
        title="t",
        summary=[],
        impact=[],
        loss=[],
        timeline=[],
        detection=[],
        resolution=[],
        action_items=[],
        supporting=[f"Slack thread: {forged}"],
        slack_link=forged,
    )
    line = next(line for line in to_jira_wiki(pm).splitlines() if "Slack thread" in line)
    assert line.count("[") == 1 and line.count("]") == 1 and line.count("|") == 1 and "!" not in line
