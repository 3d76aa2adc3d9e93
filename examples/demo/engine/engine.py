"""A stand-in for the Engine: an HTTP service with `/health` and a SQLite brain, in versions.

ENGINE_VERSION names the release; ENGINE_BROKEN=1 makes `/health` fail, as a bad release would.
ENGINE_BRAIN_SCHEMA is the newest brain schema this version reads: on start it migrates an
older brain forward (forward-only, like the real Engine) and refuses a newer one, answering
`/health` with 503 — the runbook's "the old version can't read the upgraded brain".
`POST /remember` writes one row to each memory table, the way turns do. Its body is the turn's
text, or JSON saying who and what: `{"user": "U1", "conversation": "C1", "text": "...", "tool":
"send_email"}`; conversations and feedback keep the user and the conversation, and from schema 2
every turn's tool call is recorded in `tool_calls` with its outcome (`send_email` and
`delete_resource` really "happen": outcome `sent` / `deleted`). Schema 3 (`ENGINE_BRAIN_SCHEMA=3`)
is the migration that drops data the older versions keep: the feedback's `comment` column and the
social graph's older edges (rebuilt lazily by that version). It logs to stdout so rollbot has evidence
to capture, and on SIGTERM it drains for ENGINE_DRAIN_SECONDS.

`GET /turn` is a turn without memory, for load: it fails (HTTP 500) with the share
ENGINE_FAIL_SHARE and takes ENGINE_SLOW_SECONDS longer, as the broken build does by default
(half its turns fail, each 0.3 s slower); `/turn?input=bad` is one bad request that fails alone.
`GET /metrics` exports what Prometheus scrapes from the real Engine: requests by path and
status (`engine_http_requests_total`) and their latency (`engine_http_request_duration_seconds`).
"""

import json
import os
import random
import signal
import sqlite3
import sys
import threading
import time
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

VERSION = os.environ.get("ENGINE_VERSION", "dev")
BROKEN = os.environ.get("ENGINE_BROKEN", "0") == "1"
PORT = int(os.environ.get("ENGINE_PORT", "8080"))
DRAIN_SECONDS = float(os.environ.get("ENGINE_DRAIN_SECONDS", "1"))
BRAIN_PATH = os.environ.get("ENGINE_BRAIN_PATH", "/data/brain.sqlite")
BRAIN_SCHEMA = int(os.environ.get("ENGINE_BRAIN_SCHEMA", "1"))
FAIL_SHARE = float(os.environ.get("ENGINE_FAIL_SHARE") or ("0.5" if BROKEN else "0"))
SLOW_SECONDS = float(os.environ.get("ENGINE_SLOW_SECONDS") or ("0.3" if BROKEN else "0"))
LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)

MEMORY_TABLES = ("episodes", "knowledge", "social_graph", "conversations", "feedback")
# Who a row is about, per table: conversations and feedback say which user, in which conversation.
WHO_COLUMNS = {
    "conversations": ", user_id TEXT, conversation_id TEXT",
    "feedback": ", user_id TEXT, conversation_id TEXT, comment TEXT",
}
DESTRUCTIVE_OUTCOMES = {"send_email": "sent", "delete_resource": "deleted"}
MIGRATIONS = {
    1: [
        f"CREATE TABLE {table} (id INTEGER PRIMARY KEY, created_at TEXT NOT NULL, content TEXT NOT NULL"
        f"{WHO_COLUMNS.get(table, '')})"
        for table in MEMORY_TABLES
    ],
    2: [
        "ALTER TABLE episodes ADD COLUMN embedding_model TEXT",
        "CREATE TABLE tool_calls (id INTEGER PRIMARY KEY, created_at TEXT NOT NULL, tool TEXT NOT NULL, outcome TEXT)",
    ],
    3: [
        "ALTER TABLE feedback DROP COLUMN comment",
        "DELETE FROM social_graph WHERE id < (SELECT max(id) FROM social_graph)",
    ],
}

brain_lock = threading.Lock()
metrics_lock = threading.Lock()
# Turns' series exist from the start at 0, as Prometheus' client libraries advise: a counter
# that first appears at 1 shows no increase, and the first failed turn would go unseen.
request_counts: dict[tuple[str, str], int] = {("/turn", "200"): 0, ("/turn", "500"): 0}
latency_buckets: dict[str, list[int]] = {"/turn": [0] * (len(LATENCY_BUCKETS) + 1)}
latency_sums: dict[str, float] = {"/turn": 0.0}
brain: sqlite3.Connection | None = None
brain_error: str | None = None


def log(message: str) -> None:
    print(f"engine {VERSION}: {message}", flush=True)


def open_brain() -> None:
    """Open the brain, migrating it forward to BRAIN_SCHEMA; refuse one that is newer."""
    global brain, brain_error
    os.makedirs(os.path.dirname(BRAIN_PATH), exist_ok=True)
    connection = sqlite3.connect(BRAIN_PATH, check_same_thread=False, isolation_level=None)
    connection.execute("PRAGMA journal_mode=WAL")
    found = connection.execute("PRAGMA user_version").fetchone()[0]
    if found > BRAIN_SCHEMA:
        brain_error = f"brain schema {found} is newer than this version reads ({BRAIN_SCHEMA})"
        log(f"ERROR {brain_error}")
        connection.close()
        return
    for version in range(found + 1, BRAIN_SCHEMA + 1):
        connection.execute("BEGIN")
        for statement in MIGRATIONS[version]:
            connection.execute(statement)
        connection.execute(f"PRAGMA user_version={version}")
        connection.execute("COMMIT")
        log(f"migrated the brain to schema {version}")
    brain = connection
    log(f"brain {BRAIN_PATH} open at schema {BRAIN_SCHEMA}")


def read_turn(body: str) -> dict[str, str]:
    """A turn as JSON ({"user", "conversation", "text", "tool"}) or, as before, plain text."""
    try:
        turn = json.loads(body)
    except ValueError:
        turn = None
    if not isinstance(turn, dict):
        return {"text": body or "a turn"}
    return {key: str(value) for key, value in turn.items() if value is not None}


def remember(turn: dict[str, str]) -> int:
    """One turn's worth of memory: a row in every memory table (and its tool call from schema 2)."""
    now = datetime.now(UTC).isoformat(timespec="microseconds")
    content = f"{VERSION}: {turn.get('text', 'a turn')}"
    user, conversation = turn.get("user"), turn.get("conversation")
    with brain_lock:
        brain.execute("BEGIN")
        for table in MEMORY_TABLES:
            if table == "conversations" or (table == "feedback" and BRAIN_SCHEMA >= 3):
                brain.execute(
                    f"INSERT INTO {table} (created_at, content, user_id, conversation_id) VALUES (?, ?, ?, ?)",
                    (now, content, user, conversation),
                )
            elif table == "feedback":
                brain.execute(
                    "INSERT INTO feedback (created_at, content, user_id, conversation_id, comment) VALUES (?, ?, ?, ?, ?)",
                    (now, content, user, conversation, turn.get("comment", f"comment on {content}")),
                )
            else:
                brain.execute(f"INSERT INTO {table} (created_at, content) VALUES (?, ?)", (now, content))
        if BRAIN_SCHEMA >= 2:
            tool = turn.get("tool", "search")
            outcome = DESTRUCTIVE_OUTCOMES.get(tool, "ok")
            brain.execute("INSERT INTO tool_calls (created_at, tool, outcome) VALUES (?, ?, ?)", (now, tool, outcome))
            if tool in DESTRUCTIVE_OUTCOMES:
                log(f"tool call {tool}: {outcome} (an external effect no brain restore can undo)")
        brain.execute("COMMIT")
    return len(MEMORY_TABLES) + (1 if BRAIN_SCHEMA >= 2 else 0)


def observe(path: str, status: int, seconds: float) -> None:
    with metrics_lock:
        key = (path, str(status))
        request_counts[key] = request_counts.get(key, 0) + 1
        buckets = latency_buckets.setdefault(path, [0] * (len(LATENCY_BUCKETS) + 1))
        for index, bound in enumerate((*LATENCY_BUCKETS, float("inf"))):
            if seconds <= bound:
                buckets[index] += 1
        latency_sums[path] = latency_sums.get(path, 0.0) + seconds


def exposition() -> str:
    """Prometheus' text format, written out by hand: the demo image has no pip packages."""
    lines = [
        "# HELP engine_http_requests_total HTTP requests answered, by path and status.",
        "# TYPE engine_http_requests_total counter",
    ]
    with metrics_lock:
        for (path, status), count in sorted(request_counts.items()):
            lines.append(f'engine_http_requests_total{{path="{path}",status="{status}"}} {count}')
        lines += [
            "# HELP engine_http_request_duration_seconds Time to answer an HTTP request.",
            "# TYPE engine_http_request_duration_seconds histogram",
        ]
        for path, buckets in sorted(latency_buckets.items()):
            for bound, count in zip((*LATENCY_BUCKETS, "+Inf"), buckets, strict=True):
                lines.append(f'engine_http_request_duration_seconds_bucket{{path="{path}",le="{bound}"}} {count}')
            lines.append(f'engine_http_request_duration_seconds_sum{{path="{path}"}} {latency_sums[path]}')
            lines.append(f'engine_http_request_duration_seconds_count{{path="{path}"}} {buckets[-1]}')
    return "\n".join(lines) + "\n"


class Handler(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        began = time.monotonic()
        path = self.path.split("?", 1)[0]
        if path == "/metrics":
            data = exposition().encode()
            self.send_response(200)
            self.send_header("Content-Type", "text/plain; version=0.0.4")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)
            return
        if path == "/turn":
            time.sleep(SLOW_SECONDS)
            if self.path.endswith("input=bad"):
                log("ERROR turn failed: this input crashed the agent loop")
                self._answer(500, {"error": "this input crashed the agent loop"})
            elif random.random() < FAIL_SHARE:
                log("ERROR turn failed: brain index missing after upgrade")
                self._answer(500, {"error": "brain index missing after upgrade"})
            else:
                self._answer(200, {"reply": "done", "version": VERSION})
            observe(path, self._status, time.monotonic() - began)
            return
        self._get(path)
        observe(path, self._status, time.monotonic() - began)

    def _get(self, path: str) -> None:
        if path == "/health":
            problem = brain_error or ("brain index missing after upgrade" if BROKEN else None)
            if problem:
                log(f"ERROR health check failed: {problem}")
                self._answer(503, {"status": "failing", "version": VERSION, "error": problem})
            else:
                self._answer(200, {"status": "ok", "version": VERSION, "brain_schema": BRAIN_SCHEMA})
        elif path == "/version":
            self._answer(200, {"version": VERSION})
        else:
            self._answer(404, {"error": "not found"})

    def do_POST(self) -> None:
        if self.path != "/remember" or brain is None:
            self._answer(404 if brain is not None else 503, {"error": brain_error or "not found"})
            return
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length).decode("utf-8", "replace")
        self._answer(200, {"rows": remember(read_turn(body))})

    def _answer(self, code: int, body: dict) -> None:
        self._status = code
        data = json.dumps(body).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, format: str, *args: object) -> None:
        if self.path in ("/metrics", "/turn"):
            return  # load and scrapes would drown the log the rollback captures
        log(f"{self.command} {self.path} -> {args[1] if len(args) > 1 else '?'}")


def main() -> None:
    server = ThreadingHTTPServer(("0.0.0.0", PORT), Handler)

    def drain_and_stop(signum: int, _frame: object) -> None:
        log(f"received signal {signum}; draining in-flight turns for {DRAIN_SECONDS}s")

        def finish() -> None:
            time.sleep(DRAIN_SECONDS)
            if brain is not None:
                with brain_lock:
                    brain.close()  # the last close checkpoints the WAL into the brain file
            log("drained; shutting down")
            server.shutdown()

        threading.Thread(target=finish, daemon=True).start()

    signal.signal(signal.SIGTERM, drain_and_stop)
    log(f"starting on port {PORT}{' (this build is broken: /health will fail)' if BROKEN else ''}")
    open_brain()
    server.serve_forever()
    sys.exit(0)


if __name__ == "__main__":
    main()
