"""A stand-in for the Engine: an HTTP service with `/health` and a SQLite brain, in versions.

ENGINE_VERSION names the release; ENGINE_BROKEN=1 makes `/health` fail, as a bad release would.
ENGINE_BRAIN_SCHEMA is the newest brain schema this version reads: on start it migrates an
older brain forward (forward-only, like the real Engine) and refuses a newer one, answering
`/health` with 503 — the runbook's "the old version can't read the upgraded brain".
`POST /remember` writes one row to each memory table, the way turns do. It logs to stdout so
rollbot has evidence to capture, and on SIGTERM it drains for ENGINE_DRAIN_SECONDS.
"""

import json
import os
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

MEMORY_TABLES = ("episodes", "knowledge", "social_graph", "conversations", "feedback")
MIGRATIONS = {
    1: [
        f"CREATE TABLE {table} (id INTEGER PRIMARY KEY, created_at TEXT NOT NULL, content TEXT NOT NULL)"
        for table in MEMORY_TABLES
    ],
    2: [
        "ALTER TABLE episodes ADD COLUMN embedding_model TEXT",
        "CREATE TABLE tool_calls (id INTEGER PRIMARY KEY, created_at TEXT NOT NULL, tool TEXT NOT NULL)",
    ],
}

brain_lock = threading.Lock()
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


def remember(text: str) -> int:
    """One turn's worth of memory: a row in every memory table (and tool_calls from schema 2)."""
    now = datetime.now(UTC).isoformat(timespec="microseconds")
    with brain_lock:
        brain.execute("BEGIN")
        for table in MEMORY_TABLES:
            brain.execute(f"INSERT INTO {table} (created_at, content) VALUES (?, ?)", (now, f"{VERSION}: {text}"))
        if BRAIN_SCHEMA >= 2:
            brain.execute("INSERT INTO tool_calls (created_at, tool) VALUES (?, ?)", (now, "search"))
        brain.execute("COMMIT")
    return len(MEMORY_TABLES) + (1 if BRAIN_SCHEMA >= 2 else 0)


class Handler(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        if self.path == "/health":
            problem = brain_error or ("brain index missing after upgrade" if BROKEN else None)
            if problem:
                log(f"ERROR health check failed: {problem}")
                self._answer(503, {"status": "failing", "version": VERSION, "error": problem})
            else:
                self._answer(200, {"status": "ok", "version": VERSION, "brain_schema": BRAIN_SCHEMA})
        elif self.path == "/version":
            self._answer(200, {"version": VERSION})
        else:
            self._answer(404, {"error": "not found"})

    def do_POST(self) -> None:
        if self.path != "/remember" or brain is None:
            self._answer(404 if brain is not None else 503, {"error": brain_error or "not found"})
            return
        length = int(self.headers.get("Content-Length") or 0)
        text = self.rfile.read(length).decode("utf-8", "replace") or "a turn"
        self._answer(200, {"rows": remember(text)})

    def _answer(self, code: int, body: dict) -> None:
        data = json.dumps(body).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, format: str, *args: object) -> None:
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
