"""The door of a running `rollbot serve`, pushed where a stranger would push it: bodies that
crash a JSON parser, a body of a gigabyte, requests with no signature, and secrets anyone could
guess. No Docker daemon is needed (the target's compose file does not exist).

What must hold: an unsigned body is refused 401 whatever it holds (it is never parsed); a signed
body nested 200,000 levels deep is refused by name, with a 200; a Content-Length near 1 GiB is
refused 413 before the body is read; and `rollbot serve` will not start in HTTP mode with a
signing secret that is unset, short or a placeholder: exit 2, one line, the secret not shown.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from tests.slackapi.fake_slack import FakeSlack
from tests.slackapi.prism import free_port
from tests.slackapi.signing import signed_headers

ROOT = Path(__file__).resolve().parents[2]
SECRET = "door-limits-signing-secret-3f9a0c6e"
CONFIG = """\
targets:
  engine:
    environment: door-test
    compose_file: absent/engine/docker-compose.yml
    service: engine
    health_url: http://127.0.0.1:9/health
"""
NESTED = b"[" * 200_000
TRACE_MARKS = ("Traceback (most recent call last)", "RecursionError", 'File "/', "unexpected error")
NEAR_A_GIB = 1024**3 - 1  # waitress's default cap refuses 1 GiB and more, not this


@dataclass
class Served:
    port: int
    log: Path
    http: httpx.Client
    process: subprocess.Popen[str]

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/slack/events"

    def post(
        self,
        body: bytes,
        content_type: str = "application/x-www-form-urlencoded",
        headers: dict[str, str] | None = None,
    ) -> httpx.Response:
        return self.http.post(self.url, content=body, headers={**(headers or {}), "Content-Type": content_type})

    def signed(self, body: bytes, content_type: str = "application/x-www-form-urlencoded") -> httpx.Response:
        return self.post(body, content_type, signed_headers(body, SECRET))


def _environment(folder: Path, secret: str | None, slack_url: str) -> dict[str, str]:
    env = {key: value for key, value in os.environ.items() if not key.startswith(("SLACK_", "JIRA_", "ROLLBOT_"))}
    env.update(
        SLACK_BOT_TOKEN="xoxb-door-limits-0000",
        SLACK_API_URL=slack_url,
        PYTHONPATH=str(ROOT),
        DATABASE_URL=f"sqlite:///{folder / 'rollbot.db'}",
        DOCKER_HOST=f"unix://{folder}/no-docker.sock",
        NO_COLOR="1",
    )
    if secret is not None:
        env["SLACK_SIGNING_SECRET"] = secret
    return env


def _serve_command(folder: Path, port: int) -> list[str]:
    return [sys.executable, "-m", "bot", "--config", str(folder / "rollbot.yaml"), "serve", "--port", str(port)]


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    folder = tmp_path_factory.mktemp("door")
    (folder / "rollbot.yaml").write_text(CONFIG)
    port = free_port()
    with FakeSlack() as slack, httpx.Client(timeout=60) as http:
        log = folder / "serve.log"
        with log.open("w") as output:
            process = subprocess.Popen(
                _serve_command(folder, port),
                cwd=folder,
                env=_environment(folder, SECRET, slack.url),
                stdout=output,
                stderr=subprocess.STDOUT,
                text=True,
            )
            try:
                _wait_for_healthz(http, port, process)
                yield Served(port, log, http, process)
            finally:
                process.terminate()
                try:
                    process.wait(timeout=20)
                except subprocess.TimeoutExpired:
                    process.kill()


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


def assert_clean(served: Served, answer: httpx.Response) -> None:
    """No 5xx, and no trace in the answer or the log; the server still answers."""
    assert answer.status_code < 500, answer.text[:300]
    log = served.log.read_text()
    for mark in TRACE_MARKS:
        assert mark not in answer.text, answer.text[:300]
        assert mark not in log, log[max(0, log.find(mark) - 300) : log.find(mark) + 1000]
    assert served.http.get(f"http://127.0.0.1:{served.port}/healthz").status_code == 200


@pytest.mark.parametrize(
    "body, content_type",
    [
        (b"payload=" + NESTED, "application/x-www-form-urlencoded"),
        (NESTED, "application/json"),
        (b"payload=%7Boops", "application/x-www-form-urlencoded"),
        (
            b"command=%2Frollback&text=engine+2.3.1&user_id=U0ALICE01&channel_id=C0PLANS01"
            b"&response_url=http%3A%2F%2F127.0.0.1%3A9%2Fr",
            "application/x-www-form-urlencoded",
        ),
    ],
    ids=["nested-payload", "nested-json", "bad-json", "command"],
)
def test_an_unsigned_body_is_refused_401_whatever_it_holds(served: Served, body: bytes, content_type: str) -> None:
    for headers in (
        {},
        {"X-Slack-Request-Timestamp": str(int(time.time())), "X-Slack-Signature": "v0=" + "0" * 64},
        {**signed_headers(body, "another-apps-signing-secret-7c2e9b10")},
    ):
        answer = served.post(body, content_type, headers)
        assert answer.status_code == 401 and answer.json() == {"error": "invalid request"}
        assert_clean(served, answer)


def test_a_signed_body_nested_200000_levels_deep_is_refused_by_name(served: Served) -> None:
    answer = served.signed(b"payload=" + NESTED)
    assert answer.status_code == 200
    assert answer.json()["text"] == "rollbot refused this request: `payload` is nested too deeply to be from Slack"
    assert_clean(served, answer)
    answer = served.signed(NESTED, "application/json")
    assert answer.status_code == 200 and "the JSON body is nested too deeply" in answer.json()["text"]
    assert_clean(served, answer)


def test_slacks_unsigned_tls_probe_is_answered_and_nothing_else_rides_on_it(served: Served) -> None:
    answer = served.post(b"ssl_check=1&token=legacy0token")
    assert answer.status_code == 200 and answer.text == ""
    smuggled = served.post(b"ssl_check=1&command=%2Frollback&text=engine+2.3.1")
    assert smuggled.status_code == 401


def test_a_body_near_one_gibibyte_is_refused_413_before_it_is_read(served: Served) -> None:
    """Only the headers and 64 KiB of a body of 1 GiB less a byte are sent: the answer must come without the
    rest, so the server read no more than that. A server that waits for the whole body never
    answers, and the read below ends with a timeout instead of a 413."""
    with socket.create_connection(("127.0.0.1", served.port), timeout=30) as connection:
        headers = signed_headers(b"", SECRET)
        request = (
            f"POST /slack/events HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
            f"Content-Length: {NEAR_A_GIB}\r\nX-Slack-Request-Timestamp: {headers['X-Slack-Request-Timestamp']}\r\n"
            f"X-Slack-Signature: {headers['X-Slack-Signature']}\r\n\r\n"
        ).encode()
        connection.sendall(request + b"[" * 65536)
        answer = _read_until_closed(connection)
    assert answer.startswith(b"HTTP/1.1 413 "), answer[:200]
    assert b"Traceback" not in answer
    assert served.http.get(f"http://127.0.0.1:{served.port}/healthz").status_code == 200


def test_the_largest_body_rollbot_accepts_is_still_read_and_answered(served: Served) -> None:
    from handlers.server import MAX_BODY_BYTES

    prefix, suffix = b'{"type": "event_callback", "pad": "', b'"}'
    body = prefix + b"x" * (MAX_BODY_BYTES - len(prefix) - len(suffix)) + suffix
    assert len(body) == MAX_BODY_BYTES
    answer = served.signed(body, "application/json")
    assert answer.status_code == 200 and "does not handle `event_callback`" in answer.json()["text"]


def _read_until_closed(connection: socket.socket) -> bytes:
    received = b""
    while True:
        try:
            chunk = connection.recv(65536)
        except ConnectionResetError:
            return received
        if not chunk:
            return received
        received += chunk


PLACEHOLDERS = [
    ("", "is not set"),
    ("   ", "is not set"),
    ("changeme", "characters long"),
    ("replace-me", "characters long"),
    ("xxx", "characters long"),
    ("…", "characters long"),
    ("0123456789abcdef", "characters long"),
    ("x" * 40, "placeholder"),
    ("CHANGE-ME-CHANGE-ME-CHANGE-ME-CHANGE-ME", "placeholder"),
    ("replace-me-with-the-apps-signing-secret", "placeholder"),
    ("your-slack-signing-secret-goes-here", "placeholder"),
    ("8f742231b10e8888abcd99yyyzzz85a5", "placeholder"),  # Slack's documented example
    ("abababababababababababababababababab", "different characters"),
]


@pytest.mark.parametrize("secret, says", PLACEHOLDERS, ids=[f"placeholder-{n}" for n in range(len(PLACEHOLDERS))])
def test_serve_refuses_to_start_with_a_secret_anyone_could_sign_with(tmp_path: Path, secret: str, says: str) -> None:
    (tmp_path / "rollbot.yaml").write_text(CONFIG)
    done = subprocess.run(
        _serve_command(tmp_path, free_port()),
        cwd=tmp_path,
        capture_output=True,
        text=True,
        env=_environment(tmp_path, secret, "http://127.0.0.1:9/api/"),
        timeout=120,
    )
    assert done.returncode == 2, (done.stdout, done.stderr)
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, done.stderr
    assert "SLACK_SIGNING_SECRET" in lines[0] and says in lines[0] and "refuses to start" in lines[0]
    assert "Traceback" not in done.stderr + done.stdout
    if secret.strip():
        assert secret not in done.stderr + done.stdout


def test_serve_refuses_to_start_without_a_signing_secret_in_http_mode(tmp_path: Path) -> None:
    (tmp_path / "rollbot.yaml").write_text(CONFIG)
    done = subprocess.run(
        _serve_command(tmp_path, free_port()),
        cwd=tmp_path,
        capture_output=True,
        text=True,
        env=_environment(tmp_path, None, "http://127.0.0.1:9/api/"),
        timeout=120,
    )
    assert done.returncode == 2 and "SLACK_SIGNING_SECRET is not set" in done.stderr, done.stderr
    assert not (tmp_path / "rollbot.db").exists(), "refused before anything was opened"
