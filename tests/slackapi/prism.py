"""Stoplight Prism in proxy mode in front of a test server: Slack's published spec checks every
request the bot makes, while the stateful fake behind it does the work.

    with FakeSlack() as slack, Prism(slack.url) as prism:
        client = WebClient(token="xoxb-test", base_url=prism.url)   # or SLACK_API_URL=prism.url
        client.chat_postMessage(channel="C0123ABCD", text="hi")
        assert prism.violations() == []

What Prism 5.14.2 does here (found by running it, see test_fake_slack.py):
- It forwards the path unchanged (POST /chat.postMessage -> upstream /chat.postMessage, headers
  and form bodies as sent, JSON bodies re-serialized compactly); the spec's
  `servers: https://slack.com/api` adds no prefix, so `url` is just http://127.0.0.1:<port>/.
- Without `--errors` it never changes the answer: the upstream's status, headers and body come
  back, plus an `sl-violations` header (JSON list) when something broke the spec.
- Each broken rule is one log line, request side and response side alike, e.g.
  `[4:03:27 AM] ›     [VALIDATOR] ✖  error     Violation: request.body Request body must have required property 'channel'`
  `... [VALIDATOR] ✖  error     Violation: request Invalid security scheme used` (no bearer token)
  `... [VALIDATOR] ⚠  warning   Violation: request Selected route not found` (method not in spec)
  `... [VALIDATOR] ✖  error     Violation: response.body Response body must have required property 'url'`
- The line is written before the answer is sent (single-process mode, which NODE_ENV=test pins),
  so reading the log right after a call sees it.
- Any HTTP request is forwarded and validated, so readiness is judged from Prism's own
  "Prism is listening" line plus a TCP connect, not by sending a probe that would be logged.
"""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

DEFAULT_PRISM = "/var/tmp/rollbot-ci/prism/node_modules/.bin/prism"
INSTALL_HINT = "npm install --prefix /var/tmp/rollbot-ci/prism @stoplight/prism-cli@5.14.2"
SLACK_SPEC = Path(__file__).parent / "contracts" / "slack_web_openapi_v3_prism.json"
# Methods the 2020 spec lacks, from Slack's method reference: merged into SLACK_SPEC when served.
SLACK_OVERLAY = Path(__file__).parent / "contracts" / "files_v2_overlay.json"
_VIOLATION = re.compile(r"\[VALIDATOR\]\s+\S+\s+(\w+)\s+Violation: (\S+) (.*)$")


class PrismError(RuntimeError):
    """Prism is missing, would not start, or died: the message says which and how to fix it."""


@dataclass(frozen=True)
class Violation:
    """One rule of the spec that a request or response broke, as Prism logged it."""

    severity: str  # "error" or "warning"
    location: str  # "request", "request.body", "request.body.channel", "response.body"...
    message: str  # "Request body must have required property 'channel'"
    line: str  # the raw log line

    def __str__(self) -> str:
        return f"{self.severity}: {self.location} {self.message}"


def prism_binary() -> str:
    """The prism executable: $ROLLBOT_PRISM, else the CI location. Raises PrismError (never a
    skip) when it is missing, because a contract check that silently does not run proves nothing."""
    path = os.environ.get("ROLLBOT_PRISM") or DEFAULT_PRISM
    if not (os.path.isfile(path) and os.access(path, os.X_OK)):
        raise PrismError(
            f"Prism not found at {path}. Install it with `{INSTALL_HINT}` "
            "or point ROLLBOT_PRISM at a prism 5.14.2 executable."
        )
    return path


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as sock:
        sock.bind((host, 0))
        return sock.getsockname()[1]


class Prism:
    """`prism proxy <spec> <upstream> -h 127.0.0.1 -p <free port>` as a subprocess.

    `url` is the base URL to hand to slack_sdk (ends with '/'). Prism's output goes to `log_path`
    (a temp file unless given; kept after stop for post-mortems). Starting takes 4-9 s on a
    2-CPU machine (node, then the 1.3 MB spec): share one instance per module or session and
    scope each test's checks with `mark()`.
    """

    def __init__(
        self,
        upstream: str,
        spec: Path | str = SLACK_SPEC,
        *,
        log_path: Path | str | None = None,
        host: str = "127.0.0.1",
        port: int | None = None,
        startup_timeout: float = 60.0,
    ) -> None:
        self.upstream = upstream.rstrip("/")
        self.spec = Path(spec)
        self.host = host
        self.port = port
        self.startup_timeout = startup_timeout
        self.log_path: Path | None = Path(log_path) if log_path is not None else None
        self.process: subprocess.Popen | None = None
        self.startup_seconds: float | None = None
        self._ready_offset = 0
        self._served = self.spec

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}/"

    def start(self) -> Prism:
        binary = prism_binary()
        if not self.spec.is_file():
            raise PrismError(f"spec not found: {self.spec}")
        if self.log_path is None:
            fd, name = tempfile.mkstemp(prefix="prism-", suffix=".log")
            os.close(fd)
            self.log_path = Path(name)
        self._served = self._with_overlay()
        fixed_port = self.port is not None
        for attempt in range(3):  # a free port can be taken between probing and Prism's bind
            if not fixed_port:
                self.port = free_port(self.host)
            try:
                self._launch(binary)
                return self
            except PrismError:
                if fixed_port or attempt == 2 or "EADDRINUSE" not in self.log_text():
                    raise
        return self

    def _launch(self, binary: str) -> None:
        # NODE_ENV=production would fork a worker (multiprocess) and log asynchronously;
        # FORCE_COLOR=0 keeps ANSI codes out of the log we parse.
        env = {**os.environ, "NODE_ENV": "test", "FORCE_COLOR": "0", "NO_COLOR": "1"}
        cmd = [binary, "proxy", str(self._served), self.upstream, "-h", self.host, "-p", str(self.port)]
        began = time.monotonic()
        with open(self.log_path, "wb") as log:
            self.process = subprocess.Popen(
                cmd, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, env=env, start_new_session=True
            )
        deadline = began + self.startup_timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise PrismError(f"prism exited with {self.process.returncode} while starting:\n{self._tail()}")
            if "Prism is listening on" in self.log_text() and self._accepts():
                self.startup_seconds = time.monotonic() - began
                self._ready_offset = self.mark()
                return
            time.sleep(0.05)
        self.stop()
        raise PrismError(f"prism did not listen on {self.url} within {self.startup_timeout}s:\n{self._tail()}")

    def _with_overlay(self) -> Path:
        """Slack's spec plus the files v2 methods it lacks (see contracts/README.md); another spec as is."""
        if self.spec.resolve() != SLACK_SPEC.resolve():
            return self.spec
        spec = json.loads(self.spec.read_text())
        spec["paths"].update(json.loads(SLACK_OVERLAY.read_text())["paths"])
        fd, name = tempfile.mkstemp(prefix="slack-spec-", suffix=".json")
        with os.fdopen(fd, "w") as served:
            json.dump(spec, served)
        return Path(name)

    def _accepts(self) -> bool:
        try:
            with socket.create_connection((self.host, self.port), timeout=0.5):
                return True
        except OSError:
            return False

    def stop(self) -> None:
        """SIGTERM Prism's process group, SIGKILL after 5 s."""
        proc, self.process = self.process, None
        if proc is None or proc.poll() is not None:
            return
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=5)

    def __enter__(self) -> Prism:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # ---- reading what Prism logged ---------------------------------------------------------

    def log_text(self) -> str:
        try:
            return self.log_path.read_text(encoding="utf-8", errors="replace") if self.log_path else ""
        except FileNotFoundError:
            return ""

    def mark(self) -> int:
        """A position in the log; pass it as `since=` to see only what was logged after it."""
        return len(self.log_text())

    def all_violations(self, since: int | None = None) -> list[Violation]:
        """Every violation logged since `since` (default: since Prism became ready), request and
        response side, in log order."""
        self._settle()
        text = self.log_text()[self._ready_offset if since is None else since :]
        found = []
        for line in text.splitlines():
            match = _VIOLATION.search(line)
            if match:
                found.append(Violation(match.group(1), match.group(2), match.group(3), line))
        return found

    def violations(self, since: int | None = None) -> list[Violation]:
        """Requests that broke Slack's spec: missing or ill-typed parameters, no bearer token,
        methods the spec does not know. These are the bot's bugs."""
        return [v for v in self.all_violations(since) if v.location.startswith("request")]

    def response_violations(self, since: int | None = None) -> list[Violation]:
        """Answers that broke the spec's response schemas: the fake's bugs, or the spec's own
        (it is from 2020 and wrong in places, e.g. chat.update `message.blocks` typed object)."""
        return [v for v in self.all_violations(since) if v.location.startswith("response")]

    def _settle(self, quiet: float = 0.05, limit: float = 1.0) -> None:
        # Prism writes a violation before answering; this is only a guard against a slow disk.
        end, size = time.monotonic() + limit, -1
        while time.monotonic() < end:
            now = self.log_path.stat().st_size if self.log_path and self.log_path.exists() else 0
            if now == size:
                return
            size = now
            time.sleep(quiet)

    def _tail(self, lines: int = 30) -> str:
        return "\n".join(self.log_text().splitlines()[-lines:])
