"""A stand-in for the Engine: an HTTP service with `/health`, built as several versions.

ENGINE_VERSION names the release; ENGINE_BROKEN=1 makes `/health` fail, as a bad release
would. It logs to stdout so rollbot has evidence to capture, and on SIGTERM it drains for
ENGINE_DRAIN_SECONDS (in-flight turns finishing) before it exits.
"""

import json
import os
import signal
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

VERSION = os.environ.get("ENGINE_VERSION", "dev")
BROKEN = os.environ.get("ENGINE_BROKEN", "0") == "1"
PORT = int(os.environ.get("ENGINE_PORT", "8080"))
DRAIN_SECONDS = float(os.environ.get("ENGINE_DRAIN_SECONDS", "1"))


def log(message: str) -> None:
    print(f"engine {VERSION}: {message}", flush=True)


class Handler(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        if self.path == "/health":
            if BROKEN:
                log("ERROR health check failed: brain index missing after upgrade")
                self._answer(503, {"status": "failing", "version": VERSION, "error": "brain index missing"})
            else:
                self._answer(200, {"status": "ok", "version": VERSION})
        elif self.path == "/version":
            self._answer(200, {"version": VERSION})
        else:
            self._answer(404, {"error": "not found"})

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
            log("drained; shutting down")
            server.shutdown()

        threading.Thread(target=finish, daemon=True).start()

    signal.signal(signal.SIGTERM, drain_and_stop)
    log(f"starting on port {PORT}{' (this build is broken: /health will fail)' if BROKEN else ''}")
    server.serve_forever()
    sys.exit(0)


if __name__ == "__main__":
    main()
