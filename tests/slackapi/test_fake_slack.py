"""The Slack test infrastructure, tested with the real clients: slack_sdk's WebClient against the
fake, directly and through Prism (Slack's spec checking every request), and Bolt receiving the
signed slash commands and button clicks built by tests.slackapi.signing.

Prism is required, never skipped: without it the contract check silently would not happen.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs

import httpx
import pytest
from slack_bolt import App
from slack_bolt.request import BoltRequest
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError
from slack_sdk.http_retry.builtin_handlers import RateLimitErrorRetryHandler
from slack_sdk.signature import SignatureVerifier

from tests.slackapi import prism as prism_mod
from tests.slackapi.fake_slack import FakeSlack
from tests.slackapi.prism import Prism, PrismError, Violation
from tests.slackapi.signing import block_action, post, signature, signed_headers, slash_command

CHANNEL = "C0123ABCD"
ALICE, BOB = "U0ALICE01", "U0BOB0002"
APPROVERS = "S0APPROVE"
SECRET = "8f742231b10e8888abcd99yyyzzz85a5"
SECTION = {"type": "section", "text": {"type": "mrkdwn", "text": "*Plan*: engine 2.4.0 -> 2.3.1"}}


# ---- fixtures: one fake and one Prism per module (Prism takes seconds to start) ---------------


@pytest.fixture(scope="module")
def fake() -> Iterator[FakeSlack]:
    with FakeSlack() as server:
        yield server


@pytest.fixture(scope="module")
def prism(fake: FakeSlack, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Prism]:
    proxy = Prism(fake.url, log_path=tmp_path_factory.mktemp("prism") / "prism.log")
    problem = None
    try:
        proxy.start()
    except PrismError as error:
        problem = str(error)
    if problem:  # outside the except block, so the report is the message alone
        pytest.fail(problem, pytrace=False)
    yield proxy
    proxy.stop()


@dataclass
class Api:
    """Where a test's WebClient points: the fake itself, or Prism in front of it."""

    fake: FakeSlack
    url: str
    prism: Prism | None
    mark: int = 0

    def client(self, token: str | None = "xoxb-test", **kwargs: object) -> WebClient:
        return WebClient(token=token, base_url=self.url, **kwargs)

    def request_violations(self) -> list[Violation]:
        return self.prism.violations(since=self.mark) if self.prism else []


@pytest.fixture(params=["direct", "prism"])
def api(request: pytest.FixtureRequest, fake: FakeSlack) -> Api:
    fake.reset()
    fake.usergroups = {APPROVERS: [ALICE, BOB]}
    if request.param == "direct":
        return Api(fake, fake.url, None)
    proxy: Prism = request.getfixturevalue("prism")
    return Api(fake, proxy.url, proxy, proxy.mark())


# ---- the fake's behaviour, directly and through Prism ----------------------------------------


def test_post_then_update_keeps_both_versions(api: Api) -> None:
    client = api.client()
    posted = client.chat_postMessage(channel=CHANNEL, text="Plan", blocks=[SECTION])
    assert posted["ok"] and posted["channel"] == CHANNEL and posted["ts"] == "1700000000.000100"
    assert posted["message"]["blocks"] == [SECTION]

    updated = client.chat_update(channel=CHANNEL, ts=posted["ts"], text="Rolled back")
    assert updated["ts"] == posted["ts"] and updated["text"] == "Rolled back"

    history = api.fake.edit_history(CHANNEL, posted["ts"])
    assert [v["text"] for v in history] == ["Plan", "Rolled back"]
    assert history[1]["blocks"] == [SECTION]  # not sent again: kept, as Slack documents
    assert "edited" in history[1] and "edited" not in history[0]
    assert api.fake.messages(CHANNEL) == [history[1]]
    assert api.request_violations() == []


def test_thread_reply_and_permalink(api: Api) -> None:
    client = api.client()
    parent = client.chat_postMessage(channel=CHANNEL, text="Rollback started")
    reply = client.chat_postMessage(channel=CHANNEL, text="step 1 done", thread_ts=parent["ts"])
    assert reply["message"]["thread_ts"] == parent["ts"]
    assert float(reply["ts"]) > float(parent["ts"])

    assert [m["text"] for m in api.fake.thread(CHANNEL, parent["ts"])] == ["Rollback started", "step 1 done"]
    assert [m["text"] for m in api.fake.messages(CHANNEL)] == ["Rollback started"]
    assert len(api.fake.messages(CHANNEL, replies=True)) == 2

    link = client.chat_getPermalink(channel=CHANNEL, message_ts=parent["ts"])
    assert link["permalink"] == f"https://example.slack.com/archives/{CHANNEL}/p1700000000000100"
    assert api.request_violations() == []


def test_ephemeral_is_kept_per_user(api: Api) -> None:
    answer = api.client().chat_postEphemeral(channel=CHANNEL, user=ALICE, text="only you", blocks=[SECTION])
    assert answer["message_ts"] == "1700000000.000100"
    [kept] = api.fake.ephemerals(user=ALICE)
    assert kept == {
        "channel": CHANNEL,
        "user": ALICE,
        "message_ts": answer["message_ts"],
        "text": "only you",
        "blocks": [SECTION],
    }
    assert api.fake.ephemerals(user=BOB) == [] and api.fake.messages(CHANNEL) == []
    assert api.request_violations() == []


def test_usergroups_and_lookups(api: Api) -> None:
    client = api.client()
    assert client.usergroups_users_list(usergroup=APPROVERS)["users"] == [ALICE, BOB]
    with pytest.raises(SlackApiError) as unknown:
        client.usergroups_users_list(usergroup="S0NOTHERE")
    assert unknown.value.response["error"] == "no_such_subteam"
    assert client.conversations_info(channel=CHANNEL)["channel"]["id"] == CHANNEL
    assert client.users_info(user=ALICE)["user"]["id"] == ALICE
    me = client.auth_test()
    assert (me["user_id"], me["bot_id"], me["team_id"]) == ("U0ROLLBOT", "B0ROLLBOT", "T0ROLLBOT")
    assert api.request_violations() == []


def test_rate_limit_then_success(api: Api) -> None:
    api.fake.fail("chat.postMessage", status=429, retry_after=1, times=1)
    with pytest.raises(SlackApiError) as limited:
        api.client().chat_postMessage(channel=CHANNEL, text="first")
    assert limited.value.response.status_code == 429
    assert limited.value.response["error"] == "ratelimited"
    assert {k.lower(): v for k, v in limited.value.response.headers.items()}["retry-after"] == "1"
    assert api.fake.messages(CHANNEL) == []  # a refused call does nothing

    api.fake.fail("chat.postMessage", status=429, retry_after=1, times=1)
    retrying = api.client(retry_handlers=[RateLimitErrorRetryHandler(max_retry_count=1)])
    started = time.monotonic()
    assert retrying.chat_postMessage(channel=CHANNEL, text="second")["ok"]
    assert time.monotonic() - started >= 1.0  # slack_sdk waited Retry-After
    assert [c.status for c in api.fake.calls_to("chat.postMessage")] == [429, 429, 200]
    assert [m["text"] for m in api.fake.messages(CHANNEL)] == ["second"]
    assert api.request_violations() == []


@pytest.mark.parametrize("status", [500, 503])
def test_server_errors(api: Api, status: int) -> None:
    api.fake.fail("chat.update", status=status)
    posted = api.client().chat_postMessage(channel=CHANNEL, text="x")
    with pytest.raises(SlackApiError) as failed:
        api.client().chat_update(channel=CHANNEL, ts=posted["ts"], text="y")
    assert failed.value.response.status_code == status
    assert len(api.fake.edit_history(CHANNEL, posted["ts"])) == 1


def test_without_token_not_authed(api: Api) -> None:
    with pytest.raises(SlackApiError) as refused:
        api.client(token=None).chat_postMessage(channel=CHANNEL, text="x")
    assert refused.value.response.status_code == 200
    assert refused.value.response["error"] == "not_authed"
    assert api.fake.messages(CHANNEL) == []
    if api.prism:  # Slack's spec demands the bearer token too
        assert [str(v) for v in api.request_violations()] == ["error: request Invalid security scheme used"]


def test_update_of_unknown_message(api: Api) -> None:
    with pytest.raises(SlackApiError) as missing:
        api.client().chat_update(channel=CHANNEL, ts="1700000000.999900", text="x")
    assert missing.value.response["error"] == "message_not_found"
    assert api.request_violations() == []


def test_delay_slows_one_method(api: Api) -> None:
    api.fake.delay("chat.postEphemeral", 0.5)
    client = api.client()
    started = time.monotonic()
    client.chat_postEphemeral(channel=CHANNEL, user=ALICE, text="slow")
    assert time.monotonic() - started >= 0.5
    api.fake.delay("chat.postEphemeral", 0)
    started = time.monotonic()
    client.chat_postMessage(channel=CHANNEL, text="fast")
    assert time.monotonic() - started < 0.5


# ---- Prism: what it reports ------------------------------------------------------------------


def test_bad_call_gives_exactly_one_violation(fake: FakeSlack, prism: Prism) -> None:
    fake.reset()
    mark = prism.mark()
    client = WebClient(token="xoxb-test", base_url=prism.url)
    client.chat_postMessage(channel=CHANNEL, text="good")
    assert prism.violations(since=mark) == []

    with pytest.raises(SlackApiError):  # the fake answers channel_not_found, as Slack would
        client.api_call("chat.postMessage", json={"text": "no channel"})
    [violation] = prism.violations(since=mark)
    assert violation.severity == "error" and violation.location == "request.body"
    assert violation.message == "Request body must have required property 'channel'"
    assert "[VALIDATOR]" in violation.line and "Violation: request.body" in violation.line


def test_method_outside_the_spec_is_reported(fake: FakeSlack, prism: Prism) -> None:
    mark = prism.mark()
    with pytest.raises(SlackApiError) as unknown:
        WebClient(token="xoxb-test", base_url=prism.url).api_call("canvases.create")
    assert unknown.value.response["error"] == "unknown_method"
    assert [str(v) for v in prism.violations(since=mark)] == ["warning: request Selected route not found"]


def test_files_upload_v2_shares_the_bytes_into_the_thread(fake: FakeSlack, prism: Prism) -> None:
    """slack_sdk's three steps: an upload URL (from the fake itself, on 127.0.0.1), the bytes, the
    completion into a thread. Slack's 2020 spec predates both methods; the overlay written from
    Slack's method reference (contracts/files_v2_overlay.json) lets Prism check them."""
    fake.reset()
    mark = prism.mark()
    client = WebClient(token="xoxb-test", base_url=prism.url)
    posted = client.chat_postMessage(channel=CHANNEL, text="announcement")
    done = client.files_upload_v2(
        channel=CHANNEL, thread_ts=posted["ts"], filename="chart.png", content=b"\x89PNG bytes", title="Chart"
    )
    assert done["file"]["title"] == "Chart"
    [shared] = fake.files(CHANNEL, posted["ts"])
    assert (shared["name"], shared["content"], shared["length"]) == ("chart.png", b"\x89PNG bytes", 10)
    assert [str(v) for v in prism.violations(since=mark)] == []


def test_fake_answers_match_slacks_response_schemas(fake: FakeSlack, prism: Prism) -> None:
    """Keeps the fake honest: its success answers pass the spec's response schemas, except
    where the 2020 spec is wrong (chat.update's message.blocks typed as an object)."""
    fake.reset()
    fake.usergroups = {APPROVERS: [ALICE]}
    mark = prism.mark()
    client = WebClient(token="xoxb-test", base_url=prism.url)
    posted = client.chat_postMessage(channel=CHANNEL, text="a", blocks=[SECTION])
    client.chat_postMessage(channel=CHANNEL, text="b", thread_ts=posted["ts"])
    client.chat_update(channel=CHANNEL, ts=posted["ts"], text="c")
    client.chat_postEphemeral(channel=CHANNEL, user=ALICE, text="d")
    client.usergroups_users_list(usergroup=APPROVERS)
    client.conversations_info(channel=CHANNEL)
    client.users_info(user=ALICE)
    client.auth_test()
    client.chat_getPermalink(channel=CHANNEL, message_ts=posted["ts"])
    assert [str(v) for v in prism.all_violations(since=mark)] == [
        "error: response.body.message.blocks Response body property message.blocks must be object"
    ]


def test_conversations_list_pages_by_slacks_shape(fake: FakeSlack, prism: Prism) -> None:
    """Public and private channels, archived ones left out on request, paged with an opaque
    cursor; each answer passes the spec's response schema. Posting by `#name` answers with the
    id, and chat.update by name is refused, as Slack does."""
    fake.reset()
    fake.channels = {
        "C0INCIDENT": "incident",
        "C0GENERAL0": "general",
        "C0OLDSTUFF": "old-stuff",
        "G0PRIVATE0": "oncall-private",
    }
    fake.private_channels, fake.archived_channels, fake.list_page_size = {"G0PRIVATE0"}, {"C0OLDSTUFF"}, 2
    client = WebClient(token="xoxb-test", base_url=prism.url)
    try:
        posted = client.chat_postMessage(channel="#incident", text="by name")
        assert posted["channel"] == "C0INCIDENT"
        mark = prism.mark()
        with pytest.raises(SlackApiError) as by_name:
            client.chat_update(channel="#incident", ts=posted["ts"], text="edited")
        assert by_name.value.response["error"] == "channel_not_found"
        assert prism.violations(since=mark) == [], "the request is well formed; Slack refuses the name"
        mark = prism.mark()  # Prism checks error answers against the success schema: start after it
        client.chat_update(channel=posted["channel"], ts=posted["ts"], text="edited")
        assert fake.messages("C0INCIDENT")[0]["text"] == "edited"

        seen, cursor, pages = [], None, 0
        while True:
            page = client.conversations_list(
                types="public_channel,private_channel", exclude_archived=True, limit=1000, cursor=cursor
            )
            seen += [(c["id"], c["name"], c["is_private"]) for c in page["channels"]]
            pages += 1
            cursor = page["response_metadata"]["next_cursor"]
            if not cursor:
                break
        assert pages == 2
        assert sorted(seen) == [
            ("C0GENERAL0", "general", False),
            ("C0INCIDENT", "incident", False),
            ("G0PRIVATE0", "oncall-private", True),
        ]
        public = client.conversations_list()["channels"]
        assert {c["id"] for c in public} == {"C0GENERAL0", "C0INCIDENT"}, "public only, archived included"
        assert prism.all_violations(since=mark) == []
    finally:
        fake.channels, fake.private_channels, fake.archived_channels, fake.list_page_size = None, set(), set(), 1000


def test_parser_reads_prism_5_14_2_lines() -> None:
    lines = [
        "[4:03:27 AM] ›     [VALIDATOR] ✖  error     Violation: request.body Request body must have required property 'channel'",
        "[4:03:28 AM] ›     [VALIDATOR] ✖  error     Violation: request Invalid security scheme used",
        "[4:03:20 AM] ›     [VALIDATOR] ⚠  warning   Violation: request Selected route not found",
        "[4:03:38 AM] ›     [VALIDATOR] ✖  error     Violation: response.body Response body must have required property 'url'",
        "[4:03:27 AM] ›     [PROXY] ℹ  info      < Received forward response",
    ]
    found = [prism_mod._VIOLATION.search(line) for line in lines]
    assert [m.groups() if m else None for m in found] == [
        ("error", "request.body", "Request body must have required property 'channel'"),
        ("error", "request", "Invalid security scheme used"),
        ("warning", "request", "Selected route not found"),
        ("error", "response.body", "Response body must have required property 'url'"),
        None,
    ]


def test_prism_forwards_paths_unchanged(fake: FakeSlack, prism: Prism) -> None:
    fake.reset()
    WebClient(token="xoxb-test", base_url=prism.url).auth_test()
    [call] = fake.calls
    assert call.path == "/auth.test" and call.token == "xoxb-test"
    assert prism.url.endswith("/") and prism.startup_seconds is not None


def test_missing_prism_fails_loudly(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("ROLLBOT_PRISM", str(tmp_path / "no-prism"))
    with pytest.raises(PrismError, match="npm install --prefix /var/tmp/rollbot-ci/prism"):
        Prism("http://127.0.0.1:9").start()


# ---- bodies in both encodings, concurrency ----------------------------------------------------


def test_form_and_json_bodies_store_the_same_message(fake: FakeSlack) -> None:
    fake.reset()
    auth = {"Authorization": "Bearer xoxb-test"}
    as_form = httpx.post(
        fake.url + "chat.postMessage",
        headers=auth,
        data={"channel": CHANNEL, "text": "t", "blocks": json.dumps([SECTION])},
    )
    as_json = httpx.post(
        fake.url + "chat.postMessage", headers=auth, json={"channel": CHANNEL, "text": "t", "blocks": [SECTION]}
    )
    assert as_form.json()["ok"] and as_json.json()["ok"]
    assert [m["blocks"] for m in fake.messages(CHANNEL)] == [[SECTION], [SECTION]]
    assert isinstance(fake.calls[0].params["blocks"], str) and fake.calls[1].params["blocks"] == [SECTION]
    unknown = httpx.post(fake.url + "no.such.method", headers=auth, data={})
    assert (unknown.status_code, unknown.json()) == (200, {"ok": False, "error": "unknown_method"})
    too_many = httpx.post(
        fake.url + "chat.postMessage", headers=auth, json={"channel": CHANNEL, "blocks": [SECTION] * 51}
    )
    assert too_many.json()["error"] == "invalid_blocks"


def test_concurrent_posts_get_unique_increasing_ts(fake: FakeSlack) -> None:
    fake.reset()
    client = WebClient(token="xoxb-test", base_url=fake.url)

    def poster(n: int) -> None:
        for i in range(10):
            client.chat_postMessage(channel=CHANNEL, text=f"{n}-{i}")

    threads = [threading.Thread(target=poster, args=(n,)) for n in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    stamps = [m["ts"] for m in fake.messages(CHANNEL)]
    assert len(stamps) == len(set(stamps)) == 80 == len(fake.calls)
    assert stamps == sorted(stamps, key=float)


# ---- signing: Slack's signature, Bolt receiving what we build ---------------------------------


def test_signature_matches_slack_sdk_verifier() -> None:
    body = slash_command("rollback engine", ALICE, CHANNEL, "https://example.invalid/r")
    headers = signed_headers(body, SECRET)
    verifier = SignatureVerifier(SECRET)
    assert headers["Content-Type"] == "application/x-www-form-urlencoded"
    assert verifier.is_valid_request(body, headers)
    assert verifier.is_valid(body.encode(), headers["X-Slack-Request-Timestamp"], headers["X-Slack-Signature"])
    assert not SignatureVerifier("other-secret").is_valid_request(body, headers)
    assert not verifier.is_valid_request(body + "x", headers)
    stale = signed_headers(body, SECRET, timestamp=int(time.time()) - 6 * 60)
    assert not verifier.is_valid_request(body, stale)  # Slack's 5-minute window
    # Slack's documented example (api.slack.com/authentication/verifying-requests-from-slack)
    example = (
        "token=xyzz0WbapA4vBCDEFasx0q6G&team_id=T1DC2JH3J&team_domain=testteamnow&channel_id=G8PSS9T3V"
        "&channel_name=foobar&user_id=U2CERLKJA&user_name=roadrunner&command=%2Fwebhook-collect&text="
        "&response_url=https%3A%2F%2Fhooks.slack.com%2Fcommands%2FT1DC2JH3J%2F397700885554%2F96rGlfmibIGlgcZRskXaIFfN"
        "&trigger_id=398738663015.47445629121.803a0bc887a14d10d2c447fce8b6703c"
    )
    assert signature(example, SECRET, 1531420618) == (
        "v0=a2114d57b48eac39b9ad189dd8316235a7b4a8d21a10bd27519666489c69b503"
    )


def test_slash_command_has_every_field_slack_sends() -> None:
    body = slash_command("rollback engine 2.3.1", ALICE, CHANNEL, "https://example.invalid/r", trigger_id="1.2.abc")
    fields = {k: v[0] for k, v in parse_qs(body, keep_blank_values=True).items()}
    assert list(fields) == [
        "token",
        "team_id",
        "team_domain",
        "channel_id",
        "channel_name",
        "user_id",
        "user_name",
        "command",
        "text",
        "api_app_id",
        "is_enterprise_install",
        "response_url",
        "trigger_id",
    ]
    assert fields["command"] == "/rollback" and fields["text"] == "rollback engine 2.3.1"
    assert fields["is_enterprise_install"] == "false" and fields["trigger_id"] == "1.2.abc"


def test_block_action_has_slacks_shape() -> None:
    body = block_action("approve", "run-7", BOB, CHANNEL, "1700000000.000100", "https://example.invalid/r")
    assert body.startswith("payload=")
    payload = json.loads(parse_qs(body)["payload"][0])
    assert payload["type"] == "block_actions" and payload["user"]["id"] == BOB
    assert payload["container"] == {
        "type": "message",
        "message_ts": "1700000000.000100",
        "channel_id": CHANNEL,
        "is_ephemeral": False,
    }
    assert payload["message"]["ts"] == "1700000000.000100" and payload["channel"]["id"] == CHANNEL
    [action] = payload["actions"]
    assert (action["action_id"], action["value"], action["type"]) == ("approve", "run-7", "button")
    assert {"block_id", "action_ts", "text"} <= set(action)
    ephemeral = json.loads(parse_qs(block_action("a", "v", BOB, CHANNEL, "1.2", "u", is_ephemeral=True))["payload"][0])
    assert "message" not in ephemeral and ephemeral["container"]["is_ephemeral"] is True


@pytest.fixture
def bolt_endpoint(fake: FakeSlack) -> Iterator[tuple[str, dict]]:
    """A Bolt app behind a plain HTTP server on 127.0.0.1, its Web API client on the fake:
    the way the real front end will be served."""
    fake.reset()
    seen: dict = {}
    app = App(
        signing_secret=SECRET,
        client=WebClient(token="xoxb-test", base_url=fake.url),
        token_verification_enabled=False,
        process_before_response=True,
    )

    @app.command("/rollback")
    def on_command(ack, command, respond):  # type: ignore[no-untyped-def]
        ack()
        seen["command"] = command
        respond(text=f"Plan for {command['text']}", response_type="ephemeral")

    @app.action("approve")
    def on_approve(ack, body, respond):  # type: ignore[no-untyped-def]
        ack()
        seen["action"] = body
        respond(text="Approved", replace_original=True)

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            raw = self.rfile.read(int(self.headers["Content-Length"])).decode()
            answer = app.dispatch(BoltRequest(body=raw, headers=dict(self.headers.items())))
            data = answer.body.encode()
            self.send_response(answer.status)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}/slack/events", seen
    server.shutdown()
    server.server_close()


def test_bolt_accepts_signed_command_and_responds(fake: FakeSlack, bolt_endpoint: tuple[str, dict]) -> None:
    url, seen = bolt_endpoint
    body = slash_command("rollback engine", ALICE, CHANNEL, fake.response_url("cmd1"))
    reply = post(url, body, signed_headers(body, SECRET))
    assert reply.status == 200 and reply.elapsed < 3.0
    assert seen["command"]["user_id"] == ALICE and seen["command"]["channel_id"] == CHANNEL
    assert fake.responses("cmd1") == [{"text": "Plan for rollback engine", "response_type": "ephemeral"}]

    forged = post(url, body, signed_headers(body, "wrong-secret"))
    assert forged.status == 401 and forged.json() == {"error": "invalid request"}


def test_bolt_accepts_signed_button_click(fake: FakeSlack, bolt_endpoint: tuple[str, dict]) -> None:
    url, seen = bolt_endpoint
    body = block_action("approve", "run-7", BOB, CHANNEL, "1700000000.000100", fake.response_url("act1"))
    reply = post(url, body, signed_headers(body, SECRET))
    assert reply.status == 200
    assert seen["action"]["actions"][0]["value"] == "run-7" and seen["action"]["user"]["id"] == BOB
    assert fake.responses("act1") == [{"text": "Approved", "replace_original": True}]
    assert [c.method for c in fake.calls] == ["auth.test", "response"]  # Bolt's authorize, then respond
