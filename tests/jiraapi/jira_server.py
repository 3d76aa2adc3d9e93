"""jira820 (PyPI, a stateful imitation of Jira Data Center 8.20.8's REST v2) as a subprocess on
127.0.0.1, for tests that need a Jira which keeps what the bot wrote and can be taken down and
brought back on the same address.

    with Jira820() as jira, JiraPrism(jira.url) as prism:
        client = JIRA(server=prism.url, basic_auth=("rollbot", "token"), max_retries=0)
        ...
        jira.stop()            # connection refused on jira.url; Prism answers HTTP 500
        ...
        jira.start()           # same port, same data (persist=True, the default)

What jira820 0.12.0 is (found by reading and running it, see test_jira_harness.py):
- One project, key `JIRA820` (JIRA820_PROJECT_KEY changes it; here `project_key=`), seeded with
  ~364 issues (some labelled `mock`); issue types Bug, Epic, Improvement, New Feature, Story, Task,
  Sub-task (ISSUE_TYPES). Any credentials are accepted; `X-Atlassian-Token` is not checked.
- State lives in memory. JIRA820_PERSIST=<file> makes it write the whole store (issues, labels,
  comments, attachments as base64) to that JSON file after every write, atomically, before
  answering, and load it at start: a stopped and restarted instance keeps everything. This
  harness always sets it (a file in its own temp dir) unless `persist=False`.
- Restart quirk: the comment id counter is not restored, so after a restart new comment ids
  start again at 100001 and can repeat ids of comments written before the restart. Attachment
  ids and issue keys do continue.
- JQL: `labels = "x"`, `labels in (..)`, project, key, status, issuetype, text `~`, dates,
  AND/OR, ORDER BY. An unknown clause is IGNORED, not an error: `label = "x"` (typo) matches
  every issue. Custom fields: only customfield_10004 (story points), _10008 (epic link),
  _10011 (epic name) are stored; any other custom field in a create is silently dropped.
- Attachment metadata carries an absolute `content` URL built from the Host it was asked with;
  behind Prism that is jira820's own address (Prism sends the upstream Host), so python-jira's
  `Attachment.get()` reads the bytes from jira820 directly, never through Prism.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from tests.slackapi.prism import free_port

PROJECT_KEY = "JIRA820"
ISSUE_TYPES = ("Bug", "Epic", "Improvement", "New Feature", "Story", "Task", "Sub-task")
SERVER_VERSION = "8.20.8"
INSTALL_HINT = "pip install -e '.[test]'  (or: pip install 'jira820>=0.12,<0.13')"


class Jira820Error(RuntimeError):
    """jira820 is missing, would not start, or died: the message says which, with its log tail."""


class Jira820:
    """jira820 as a subprocess: `start()` / `stop()` as often as a test likes, always on one port.

    The first `start()` picks a free port unless `port` is given; later starts reuse it, so `url`
    never changes and a client (or Prism) pointed at it works again once Jira is back.
    `persist=True` (default) keeps the data across stop/start in `state_path` (a temp file unless
    given); `persist=False` gives a freshly seeded Jira on every start. `reset()` is stop, forget
    the data, start. `freeze()` / `thaw()` (SIGSTOP / SIGCONT) make a Jira that accepts
    connections but never answers, for timeout tests.
    The server's output (uvicorn's access log, tracebacks) is appended to `log_path` across
    restarts, one `=== jira820 start N ===` line before each start. Leaving a `with` block is
    `close()`: files the harness chose itself (a temp dir) are deleted, paths you gave are kept.
    """

    def __init__(
        self,
        *,
        host: str = "127.0.0.1",
        port: int | None = None,
        persist: bool = True,
        state_path: Path | str | None = None,
        log_path: Path | str | None = None,
        project_key: str = PROJECT_KEY,
        extra_env: Mapping[str, str] | None = None,
        command: Sequence[str] | None = None,
        startup_timeout: float = 30.0,
    ) -> None:
        self.host = host
        self.port = port
        self.persist = persist
        self.project_key = project_key
        self.extra_env = dict(extra_env or {})
        self.command = list(command) if command else [sys.executable, "-m", "jira820"]
        self.startup_timeout = startup_timeout
        self._tmpdir: str | None = None
        self.state_path: Path | None = Path(state_path) if state_path is not None else None
        self.log_path: Path | None = Path(log_path) if log_path is not None else None
        self.process: subprocess.Popen | None = None
        self.starts = 0  # how many times it has been started
        self.startup_seconds: float | None = None  # of the last start
        self.frozen = False

    # ---- where it is ------------------------------------------------------------------------

    @property
    def url(self) -> str:
        """http://127.0.0.1:<port>, no trailing slash: JIRA(server=...) or Prism's upstream."""
        if self.port is None:
            raise Jira820Error("jira820 has no port yet: start() it first")
        return f"http://{self.host}:{self.port}"

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    # ---- lifecycle --------------------------------------------------------------------------

    def start(self) -> Jira820:
        """Start jira820 and wait until it answers GET /rest/api/2/serverInfo (about 1 s)."""
        if self.running:
            return self
        self._prepare_files()
        fixed_port = self.port is not None
        for attempt in range(3):  # a probed free port can be taken before jira820 binds it
            if not fixed_port:
                self.port = free_port(self.host)
            try:
                self._launch()  # from now on self.port is kept: restarts reuse it
                return self
            except Jira820Error as error:
                bind_failed = "address already in use" in str(error).lower()
                if fixed_port or attempt == 2 or not bind_failed:
                    raise
                self.port = None
        return self

    def stop(self) -> None:
        """SIGTERM (SIGKILL after 5 s) and wait until the port refuses connections. Data written
        so far is already in `state_path`: jira820 saves before it answers each write."""
        proc, self.process = self.process, None
        if proc is None:
            return
        if proc.poll() is None:
            self._signal(proc, signal.SIGTERM)
            if self.frozen:
                self._signal(proc, signal.SIGCONT)  # a stopped process cannot act on SIGTERM
            try:
                proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self._signal(proc, signal.SIGKILL)
                proc.wait(timeout=5)
        self.frozen = False
        deadline = time.monotonic() + 5
        while self._accepts() and time.monotonic() < deadline:
            time.sleep(0.02)

    def restart(self) -> Jira820:
        self.stop()
        return self.start()

    def reset(self) -> Jira820:
        """Stop, forget every change (the state file), start freshly seeded on the same port."""
        self.stop()
        if self.state_path is not None:
            for path in (self.state_path, Path(str(self.state_path) + ".tmp")):
                path.unlink(missing_ok=True)
        return self.start()

    def freeze(self) -> None:
        """SIGSTOP: the port still accepts TCP connections (the kernel's backlog), nothing is
        answered until `thaw()`. Requests sent meanwhile are carried out after the thaw."""
        if not self.running:
            raise Jira820Error("cannot freeze jira820: it is not running")
        self._signal(self.process, signal.SIGSTOP)
        self.frozen = True

    def thaw(self) -> None:
        if self.running and self.frozen:
            self._signal(self.process, signal.SIGCONT)
        self.frozen = False

    def close(self) -> None:
        """Stop and delete the temp dir (state file and log) if the harness made it."""
        self.stop()
        if self._tmpdir is not None:
            shutil.rmtree(self._tmpdir, ignore_errors=True)
            self._tmpdir = None

    def __enter__(self) -> Jira820:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ---- internals --------------------------------------------------------------------------

    def _prepare_files(self) -> None:
        if (self.log_path is None or (self.persist and self.state_path is None)) and self._tmpdir is None:
            self._tmpdir = tempfile.mkdtemp(prefix="jira820-")
        if self.log_path is None:
            self.log_path = Path(self._tmpdir) / "jira820.log"
        if self.persist and self.state_path is None:
            self.state_path = Path(self._tmpdir) / "state.json"

    def _env(self) -> dict[str, str]:
        # Settings from the caller's shell (JIRA820_*) must not leak in: the harness decides.
        env = {k: v for k, v in os.environ.items() if not k.startswith("JIRA820_")}
        env.update(
            {
                "JIRA820_HOST": self.host,
                "JIRA820_PORT": str(self.port),
                "JIRA820_PROJECT_KEY": self.project_key,
                "PYTHONUNBUFFERED": "1",
            }
        )
        if self.persist:
            env["JIRA820_PERSIST"] = str(self.state_path)
        env.update(self.extra_env)
        return env

    def _launch(self) -> None:
        began = time.monotonic()
        self.starts += 1
        offset = self.log_path.stat().st_size if self.log_path.exists() else 0
        with open(self.log_path, "ab") as log:
            log.write(f"=== jira820 start {self.starts} on {self.host}:{self.port} ===\n".encode())
            log.flush()
            try:
                self.process = subprocess.Popen(
                    self.command,
                    stdin=subprocess.DEVNULL,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    env=self._env(),
                    start_new_session=True,
                )
            except OSError as error:
                raise Jira820Error(f"cannot run {self.command}: {error}. Install it with `{INSTALL_HINT}`.") from error
        deadline = began + self.startup_timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                code, self.process = self.process.returncode, None
                tail = self._tail(since=offset)
                hint = f" Install it with `{INSTALL_HINT}`." if "No module named" in tail else ""
                raise Jira820Error(
                    f"jira820 exited with {code} while starting on {self.host}:{self.port}.{hint}\n{tail}"
                )
            if self._answers():
                self.startup_seconds = time.monotonic() - began
                return
            time.sleep(0.05)
        self.stop()
        raise Jira820Error(
            f"jira820 did not answer on {self.url} within {self.startup_timeout}s:\n{self._tail(since=offset)}"
        )

    def _answers(self) -> bool:
        try:
            with urllib.request.urlopen(f"{self.url}/rest/api/2/serverInfo", timeout=1) as resp:
                return resp.status == 200
        except (OSError, urllib.error.URLError):
            return False

    def _accepts(self) -> bool:
        try:
            with socket.create_connection((self.host, self.port), timeout=0.5):
                return True
        except OSError:
            return False

    @staticmethod
    def _signal(proc: subprocess.Popen, sig: int) -> None:
        try:
            os.killpg(proc.pid, sig)  # its own session: the group is jira820 alone
        except ProcessLookupError:
            pass

    # ---- reading it directly (never through Prism, so nothing shows up in Prism's log) -------

    def get_json(self, path: str, params: Mapping[str, Any] | None = None, timeout: float = 5) -> Any:
        """GET a REST path (e.g. "/rest/api/2/issue/JIRA820-1") straight from jira820."""
        query = f"?{urllib.parse.urlencode(params)}" if params else ""
        with urllib.request.urlopen(f"{self.url}{path}{query}", timeout=timeout) as resp:
            return json.loads(resp.read())

    def search(self, jql: str, max_results: int = 1000) -> list[dict]:
        """The issues (raw JSON) a JQL query finds. Mind jira820's JQL: an unknown clause is
        ignored, so a misspelt field matches everything."""
        found = self.get_json("/rest/api/2/search", {"jql": jql, "maxResults": max_results, "validateQuery": "true"})
        return found["issues"]

    def issues_labelled(self, label: str) -> list[str]:
        """Keys of the issues carrying `label` (exact match), in key order: the way to check that
        an issue was created exactly once, also after a restart."""
        if not label or any(c.isspace() or c in "\"'\\" for c in label):
            raise ValueError(f"not a Jira label: {label!r}")
        keys = [issue["key"] for issue in self.search(f'labels = "{label}"')]
        return sorted(keys, key=lambda k: (k.rsplit("-", 1)[0], int(k.rsplit("-", 1)[1])))

    def issue(self, key: str) -> dict:
        return self.get_json(f"/rest/api/2/issue/{urllib.parse.quote(key)}")

    def log_text(self) -> str:
        try:
            return self.log_path.read_text(encoding="utf-8", errors="replace") if self.log_path else ""
        except FileNotFoundError:
            return ""

    def _tail(self, lines: int = 30, since: int = 0) -> str:
        return "\n".join(self.log_text()[since:].splitlines()[-lines:])
