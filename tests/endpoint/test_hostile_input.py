"""Generated hostile input against a running `rollbot serve`: thousands of slash commands and
interactivity payloads, signed exactly as Slack signs them, sent over HTTP.

What must hold for every one of them: no 5xx; no traceback in the answer, in anything that
reached Slack's Web API (the project's fake, via SLACK_API_URL) or in the bot's log; nothing
hits the "unexpected error" path; a signed request is answered 200 and an unsigned one 401;
and when the generator broke a field on purpose, the refusal names that field (or quotes the
value). Runs that are well formed but point nowhere (an unknown run id, another plan's run)
are refused in an ephemeral message that quotes the id.

No Docker daemon is needed: the targets' compose files do not exist, so preflight refuses at
once, and DOCKER_HOST points at a socket that is not there, so `status` and `snapshot` fail
fast instead of asking a daemon. Generation is derandomized: CI runs the same examples each time.
"""

from __future__ import annotations

import html
import json
import os
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlencode

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from handlers.ids import ActionId, AnswerActionId, RecoveryActionId
from storage import Journal, connect
from storage.repository import NewRun
from tests.slackapi.fake_slack import FakeSlack
from tests.slackapi.prism import free_port
from tests.slackapi.signing import block_action, signed_headers, slash_command

ROOT = Path(__file__).resolve().parents[2]
SECRET = "hostile-input-signing-secret-9c31d7f0"
TOKEN = "xoxb-hostile-input-0000"
REQUESTER, APPROVER, STRANGER = "U0REQUEST1", "U0APPROVER", "U0STRANGER"
USERS = [REQUESTER, APPROVER, STRANGER, "W0ENTERPRS"]
CHANNEL = "C0PLANS001"
ENGINE_PLAN_TS, PAYMENTS_PLAN_TS = "1700000000.000100", "1700000000.000200"
# Buttons rollbot has: the plan's, and Resume and Abort on an interrupted run's report. Each
# carries a run id.
KNOWN_ACTIONS = [action.value for action in (*ActionId, *AnswerActionId, *RecoveryActionId)]
# view_submission is rollbot's form: its malformed fields are refused by name (tests/unit/test_inbound.py).
OTHER_PAYLOAD_TYPES = [
    "view_closed",
    "shortcut",
    "message_action",
    "block_suggestion",
    "interactive_message",
    "dialog_submission",
    "workflow_step_edit",
    "app_home_opened",
]
TRACEBACK_MARKS = ("Traceback (most recent call last)", 'File "/', "unexpected error")
EXAMPLES = {"commands": 800, "command_fields": 300, "clicks": 800, "click_fields": 400, "bodies": 400}
CONFIG = """\
targets:
  engine:
    environment: hostile-test
    compose_file: absent/engine/docker-compose.yml
    service: engine
    health_url: http://127.0.0.1:9/health
    approvers: [U0APPROVER]
  payments:
    environment: hostile-test
    compose_file: absent/payments/docker-compose.yml
    service: payments
    health_url: http://127.0.0.1:9/health
    brain:
      path: absent/payments/brain.sqlite
      snapshots_dir: absent/payments/snapshots
    requesters: [U0REQUEST1, S0ONCALL00]
    approvers: [S0ONCALL00]
"""


@dataclass
class Served:
    """`rollbot serve` in a subprocess, the fake Web API it calls, and what the test sent."""

    url: str
    slack: FakeSlack
    log: Path
    http: httpx.Client
    runs: dict[str, str]  # target -> id of a run planned on its own plan message
    sent: Counter[str] = field(default_factory=Counter)
    unknown_run_ids: set[str] = field(default_factory=set)

    def post(
        self, body: bytes, content_type: str = "application/x-www-form-urlencoded", secret: str = SECRET
    ) -> httpx.Response:
        headers = {**signed_headers(body, secret), "Content-Type": content_type}
        return self.http.post(self.url, content=body, headers=headers)

    def settle(self, quiet_seconds: float = 1.5, timeout: float = 120) -> None:
        """Wait until the work after the acks is done: no new Web API call for a while."""
        deadline = time.monotonic() + timeout
        count, quiet_since = -1, time.monotonic()
        while time.monotonic() < deadline:
            now = len(self.slack.calls)
            if now != count:
                count, quiet_since = now, time.monotonic()
            elif time.monotonic() - quiet_since >= quiet_seconds:
                return
            time.sleep(0.1)
        raise AssertionError(f"the bot was still calling Slack after {timeout}s")


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    folder = tmp_path_factory.mktemp("hostile")
    (folder / "rollbot.yaml").write_text(CONFIG)
    database = f"sqlite:///{folder / 'rollbot.db'}"
    runs = _seed_plans(database)
    port = free_port()
    env = {key: value for key, value in os.environ.items() if not key.startswith(("SLACK_", "JIRA_", "ROLLBOT_"))}
    with FakeSlack(usergroups={"S0ONCALL00": [STRANGER]}) as slack, httpx.Client(timeout=20) as http:
        env.update(
            SLACK_BOT_TOKEN=TOKEN,
            SLACK_SIGNING_SECRET=SECRET,
            SLACK_API_URL=slack.url,
            DATABASE_URL=database,
            DOCKER_HOST=f"unix://{folder}/no-docker.sock",
            PYTHONPATH=str(ROOT),
            NO_COLOR="1",
        )
        log = folder / "serve.log"
        with log.open("w") as output:
            process = subprocess.Popen(
                [sys.executable, "-m", "bot", "--config", str(folder / "rollbot.yaml"), "serve", "--port", str(port)],
                cwd=folder,
                env=env,
                stdout=output,
                stderr=subprocess.STDOUT,
                text=True,
            )
            try:
                _wait_for_healthz(http, port, process)
                yield Served(f"http://127.0.0.1:{port}/slack/events", slack, log, http, runs)
            finally:
                process.terminate()
                try:
                    process.wait(timeout=20)
                except subprocess.TimeoutExpired:
                    process.kill()


def _seed_plans(database: str) -> dict[str, str]:
    """Two planned runs, one per target, each shown on its own plan message in CHANNEL: the
    buttons' run ids that exist, for clicks on the right message and on the other one."""
    journal = Journal(connect(database))
    runs = {}
    for target, version, ts in (("engine", "2.3.1", ENGINE_PLAN_TS), ("payments", "1.0.0", PAYMENTS_PLAN_TS)):
        run = journal.record_plan(
            NewRun(
                target=target,
                to_version=version,
                requester=REQUESTER,
                steps=[("set_image_tag", "switch the image tag")],
            ),
            actor=REQUESTER,
        )
        journal.set_context(run.id, plan_message={"channel": CHANNEL, "ts": ts})
        runs[target] = run.id
    return runs


def _wait_for_healthz(http: httpx.Client, port: int, process: subprocess.Popen[str]) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        assert process.poll() is None, "rollbot serve exited at start"
        try:
            if http.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise AssertionError("rollbot serve did not answer /healthz within 60s")


# --- generators ---------------------------------------------------------------------------------

HUGE = st.builds(lambda char, size: char * size, st.characters(codec="utf-8"), st.integers(2_001, 60_000))
NOT_A_STRING = st.one_of(
    st.integers(),
    st.floats(allow_nan=False),
    st.booleans(),
    st.lists(st.integers(), max_size=3),
    st.dictionaries(st.text(max_size=5), st.integers(), max_size=2),
)
# Never a valid id, timestamp or URL: each contains a space and a '!', which none of those may.
MALFORMED_TEXT = st.text(max_size=60).map(lambda text: text + " !")
WORDS = st.text(st.characters(codec="utf-8", exclude_categories=("Cs",)), min_size=1, max_size=30)
VERSIONS = st.one_of(
    st.sampled_from(["2.3.1", "1.0.0", "latest", "v2"]),
    st.from_regex(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,20}", fullmatch=True),
    WORDS,
    st.integers(129, 400).map(lambda n: "9" * n),
)
TARGETS = st.one_of(st.sampled_from(["engine", "payments", "ENGINE", "ghost"]), WORDS)
REASONS = st.one_of(st.just(""), st.text(max_size=200), st.integers(501, 1500).map(lambda n: "why " * (n // 4 + 1)))
COMMAND_TEXTS = st.one_of(
    st.tuples(TARGETS, VERSIONS, REASONS).map(lambda parts: " ".join(parts)),
    st.tuples(
        TARGETS,
        VERSIONS,
        st.sampled_from(["--brain", "--brain=", "--brain maybe", "--brain=restore", "--brain keep", "--brainwash"]),
    ).map(lambda parts: " ".join(parts)),
    st.sampled_from(
        [
            "",
            "help",
            "status",
            "status now",
            "history",
            "history engine",
            "history a b",
            "snapshot",
            "snapshot payments",
            "snapshot engine",
            "snapshot a b",
            "drill",
            "drill engine",
            "drill engine 2.4.0",
            "drill ghost 2.4.0",
            "drill engine ../x",
        ]
    ),
    st.text(max_size=300),
    st.integers(2_001, 20_000).map(lambda n: "engine 2.3.1 " + "x" * n),
)


def _json_values() -> st.SearchStrategy[Any]:
    return st.recursive(
        st.one_of(st.none(), st.booleans(), st.integers(), st.text(max_size=20)),
        lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3),
        max_leaves=8,
    )


@st.composite
def clicks(draw: st.DrawFn) -> tuple[dict[str, Any], str]:
    """A block_actions payload as Slack sends it, on one of the two plan messages or another,
    carrying a known or unknown action id and an existing, unknown or absurd run id."""
    action_id = draw(st.one_of(st.sampled_from(KNOWN_ACTIONS), st.text(min_size=1, max_size=80)))
    value = draw(
        st.one_of(
            st.sampled_from(["engine", "payments"]),
            st.text(min_size=1, max_size=60),
            st.from_regex(r"20[0-9]{6}-[0-9]{6}-[0-9a-f]{6}", fullmatch=True),
        )
    )
    message_ts = draw(st.sampled_from([ENGINE_PLAN_TS, PAYMENTS_PLAN_TS, "1700000099.000100"]))
    user = draw(st.sampled_from(USERS))
    body = block_action(
        action_id,
        value,
        user,
        CHANNEL,
        message_ts,
        "http://127.0.0.1:9/response/unused",
        message={"type": "message", "text": draw(st.text(max_size=50))},
    )
    return json.loads(_form_field(body, "payload")), value


def _form_field(body: str, name: str) -> str:
    return dict(_form_items(body))[name]


# (where in the payload, what to put there, the field the refusal must name)
CLICK_DEFECTS: list[tuple[tuple[str, ...], st.SearchStrategy[Any], str]] = [
    (("user",), st.one_of(st.none(), NOT_A_STRING, st.sampled_from(USERS)), "`user.id`"),
    (("user", "id"), st.one_of(st.none(), st.just(""), NOT_A_STRING, MALFORMED_TEXT, HUGE), "`user.id`"),
    (("channel",), st.one_of(st.none(), NOT_A_STRING), "`channel.id`"),
    (("channel", "id"), st.one_of(st.none(), st.just(""), NOT_A_STRING, MALFORMED_TEXT, HUGE), "`channel.id`"),
    (("container",), st.one_of(st.none(), NOT_A_STRING, MALFORMED_TEXT), "`container.message_ts`"),
    (
        ("container", "message_ts"),
        st.one_of(st.none(), st.just(""), NOT_A_STRING, MALFORMED_TEXT, HUGE),
        "`container.message_ts`",
    ),
    (
        ("actions",),
        st.one_of(
            st.none(),
            st.just([]),
            st.integers(),
            st.text(max_size=20),
            st.dictionaries(st.text(max_size=5), st.integers(), max_size=2),
        ),
        "`actions",
    ),
    (
        ("actions", "0"),
        st.one_of(st.none(), st.integers(), st.text(max_size=20), st.lists(st.integers(), max_size=2)),
        "`actions[0]`",
    ),
    (("actions", "0", "action_id"), st.one_of(st.none(), st.just(""), NOT_A_STRING, HUGE), "`actions[0].action_id`"),
    (("actions", "0", "value"), st.one_of(st.none(), st.just(""), NOT_A_STRING, HUGE), "`actions[0].value`"),
    (("type",), st.one_of(st.none(), st.just(""), NOT_A_STRING), "`payload.type`"),
]
COMMAND_DEFECTS: list[tuple[str, st.SearchStrategy[Any], str]] = [
    ("user_id", st.one_of(st.none(), st.just(""), MALFORMED_TEXT, HUGE), "`user_id`"),
    ("channel_id", st.one_of(st.none(), st.just(""), MALFORMED_TEXT, HUGE), "`channel_id`"),
    ("response_url", st.one_of(st.none(), st.just(""), MALFORMED_TEXT, HUGE), "`response_url`"),
    ("command", st.one_of(st.none(), st.just("")), "`command`"),
    ("command", st.integers(256, 5_000).map(lambda n: "/" + "c" * n), "`command`"),
]


def _put(payload: dict[str, Any], path: tuple[str, ...], value: Any) -> None:
    """Set (or, for None, remove) one field; a channel defect also breaks container.channel_id,
    Slack's other place for the channel, so that the payload really names no channel."""
    tree: Any = payload
    for key in path[:-1]:
        tree = tree[int(key)] if isinstance(tree, list) else tree[key]
    last = path[-1]
    if isinstance(tree, list):
        tree[int(last)] = value
    elif value is None:
        tree.pop(last, None)
    else:
        tree[last] = value
    if path[0] == "channel" and isinstance(payload.get("container"), dict):
        payload["container"].pop("channel_id", None)


# --- oracles ------------------------------------------------------------------------------------


def text_of(response: httpx.Response) -> str:
    if response.headers.get("content-type", "").startswith("application/json"):
        answer = response.json()
        return str(answer.get("text", "")) if isinstance(answer, dict) else response.text
    return response.text


def assert_clean(response: httpx.Response) -> str:
    assert response.status_code == 200, (response.status_code, response.text[:300])
    for mark in TRACEBACK_MARKS:
        assert mark not in response.text, response.text[:500]
    return text_of(response)


def quotes(text: str, value: str) -> bool:
    """The refusal quotes `value`: its start (rollbot clips long values) right after a quote
    mark, however it was made inert: escaped for Slack (&amp; &lt; &gt;), as a repr, or with
    only its control characters escaped."""
    start = value[:20]
    escaped = "".join(char if char.isprintable() else repr(char)[1:-1] for char in start)
    plain = html.unescape(text)
    return any(mark + form in plain for form in (start, repr(start)[1:-1], escaped) for mark in "`'\"")


def is_refusal(text: str) -> bool:
    return text.startswith(("rollbot refused", "Not understood", "Unknown target", ":no_entry:"))


def names_something_typed(refusal: str, typed: str) -> bool:
    """A refusal of a command's text names what was wrong in it, in its first line (the help
    text follows a blank line): it quotes a word that was typed, or names a typed keyword of
    four or more letters (`status`, `--brain` of `--brain=x`, a target), or gives the length of an over-long
    command, or says the reason is too long."""
    first = html.unescape(refusal.split("\n\n")[0])
    words = typed.split()
    return (
        quotes(first, typed.strip())
        or any(quotes(first, word) for word in words)
        or any(len(name) >= 4 and name.lower() in first.lower() for name in (word.split("=")[0] for word in words))
        or (len(typed) > 2000 and str(len(typed)) in first)
        or "the reason is" in first
    )


# --- the properties -----------------------------------------------------------------------------


def run_examples(test: Callable[..., None], examples: int, *strategies: st.SearchStrategy[Any]) -> None:
    checked = settings(
        max_examples=examples,
        deadline=None,
        derandomize=True,
        database=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.large_base_example],
    )(given(*strategies)(test))
    checked()


def test_generated_command_texts(served: Served) -> None:
    def send(text: str, user: str) -> None:
        body = slash_command(text, user, CHANNEL, served.slack.response_url()).encode()
        answer = assert_clean(served.post(body))
        served.sent["commands"] += 1
        assert answer, "every command gets an answer"
        if is_refusal(answer):
            assert names_something_typed(answer, text), (text[:200], answer[:300])

    run_examples(send, EXAMPLES["commands"], COMMAND_TEXTS, st.sampled_from(USERS))
    served.settle()
    assert_nothing_unclean_reached_slack_or_the_log(served, "commands")


def test_generated_command_fields(served: Served) -> None:
    @st.composite
    def broken(draw: st.DrawFn) -> tuple[str, Any, str]:
        key, values, names = draw(st.sampled_from(COMMAND_DEFECTS))
        return key, draw(values), names

    def send(defect: tuple[str, Any, str], text: str) -> None:
        key, value, names = defect
        fields = dict(_form_items(slash_command(text, REQUESTER, CHANNEL, served.slack.response_url())))
        if value is None:
            fields.pop(key)
        else:
            fields[key] = value
        answer = assert_clean(served.post(urlencode(fields).encode()))
        served.sent["command_fields"] += 1
        assert is_refusal(answer) and names in answer, (key, str(value)[:80], answer[:300])

    run_examples(send, EXAMPLES["command_fields"], broken(), COMMAND_TEXTS)
    served.settle()
    assert_nothing_unclean_reached_slack_or_the_log(served, "command_fields")


def test_generated_clicks(served: Served) -> None:
    def send(click: tuple[dict[str, Any], str]) -> None:
        payload, value = click
        action_id = payload["actions"][0]["action_id"]
        if value in served.runs:  # a run that exists, possibly on the other target's plan message
            value = payload["actions"][0]["value"] = served.runs[value]
        answer = assert_clean(served.post(urlencode({"payload": json.dumps(payload)}).encode()))
        served.sent["clicks"] += 1
        if action_id not in KNOWN_ACTIONS:
            assert is_refusal(answer) and quotes(answer, action_id), (action_id, answer)
        elif value not in served.runs.values():
            served.unknown_run_ids.add(value)

    run_examples(send, EXAMPLES["clicks"], clicks())
    served.settle()
    ephemerals = [entry["text"] for entry in served.slack.ephemerals()]
    unnamed = [value for value in served.unknown_run_ids if not any(quotes(text, value) for text in ephemerals)]
    assert not unnamed, f"clicks on unknown run ids without a refusal quoting the id: {unnamed[:5]}"
    for target, run_id in served.runs.items():
        other_message = [text for text in ephemerals if f"run {run_id} ({target} →" in text]
        assert other_message, f"a click with {target}'s run id on another plan's message was not refused by id"
    assert_nothing_unclean_reached_slack_or_the_log(served, "clicks")


def test_generated_broken_click_fields(served: Served) -> None:
    @st.composite
    def broken(draw: st.DrawFn) -> tuple[dict[str, Any], str]:
        payload, _ = draw(clicks())
        path, values, names = draw(st.sampled_from(CLICK_DEFECTS))
        _put(payload, path, draw(values))
        return payload, names

    def send(defect: tuple[dict[str, Any], str]) -> None:
        payload, names = defect
        answer = assert_clean(served.post(urlencode({"payload": json.dumps(payload)}).encode()))
        served.sent["click_fields"] += 1
        assert is_refusal(answer) and names in answer, (names, json.dumps(payload)[:300], answer[:300])

    run_examples(send, EXAMPLES["click_fields"], broken())
    served.settle()
    assert_nothing_unclean_reached_slack_or_the_log(served, "click_fields")


def test_generated_bodies_and_payload_types(served: Served) -> None:
    """Other payload types, payloads that are not JSON objects, form and JSON bodies of any
    bytes, and a share of requests signed with the wrong secret."""
    kinds = st.sampled_from(["type", "not_json", "not_object", "form", "json", "unsigned"])

    def send(kind: str, text: str, value: Any, raw: bytes, other_type: str) -> None:
        served.sent["bodies"] += 1
        if kind == "unsigned":
            response = served.post(raw, secret="not-the-signing-secret")
            assert response.status_code == 401 and not any(m in response.text for m in TRACEBACK_MARKS)
            return
        if kind == "type":
            payload = {"type": other_type, "user": value, "view": value, "callback_id": value, "team": value}
            answer = assert_clean(served.post(urlencode({"payload": json.dumps(payload)}).encode()))
            assert is_refusal(answer) and quotes(answer, other_type), (other_type, answer)
        elif kind == "not_json":
            answer = assert_clean(served.post(urlencode({"payload": "{" + text}).encode()))
            assert is_refusal(answer) and "`payload" in answer, answer
        elif kind == "not_object":
            shown = json.dumps(value if not isinstance(value, dict) else [value])
            answer = assert_clean(served.post(urlencode({"payload": shown}).encode()))
            assert is_refusal(answer) and "`payload` is " in answer, answer
        else:
            content_type = "application/json" if kind == "json" else "application/x-www-form-urlencoded"
            answer = assert_clean(served.post(raw, content_type))
            assert is_refusal(answer), (raw[:100], answer)

    other_types = st.one_of(
        st.sampled_from(OTHER_PAYLOAD_TYPES),
        st.text(min_size=1, max_size=60).filter(lambda kind: kind != "block_actions"),
    )
    run_examples(
        send, EXAMPLES["bodies"], kinds, st.text(max_size=200), _json_values(), st.binary(max_size=400), other_types
    )
    served.settle()
    assert_nothing_unclean_reached_slack_or_the_log(served, "bodies")


def assert_nothing_unclean_reached_slack_or_the_log(served: Served, kind: str) -> None:
    """Hypothesis ran (nearly) all the examples asked for, and no traceback and no 'unexpected
    error' is in any message, ephemeral, edit or response_url post the bot made, nor in its log."""
    assert served.sent[kind] >= 0.9 * EXAMPLES[kind], (kind, served.sent[kind])
    for call in served.slack.calls:
        shown = {key: value for key, value in call.params.items() if key in ("text", "blocks", "attachments")}
        for mark in TRACEBACK_MARKS:
            assert mark not in json.dumps(shown), (call.method, str(shown)[:500])
    log = served.log.read_text()
    for mark in TRACEBACK_MARKS:
        assert mark not in log, log[log.find(mark) - 500 : log.find(mark) + 1500]


def _form_items(body: str) -> list[tuple[str, str]]:
    return parse_qsl(body, keep_blank_values=True)
