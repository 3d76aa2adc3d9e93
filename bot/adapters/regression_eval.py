"""The runbook's regression eval, run the way the target's config says: a command or a URL.

A command is an argument list started without a shell (the config cannot smuggle one in);
it passes when it exits 0. A URL passes when it answers 2xx. Whatever goes wrong (the command
missing, a timeout, no answer) is a failing eval with the reason, never an exception: a check
must still give its verdict.
"""

from __future__ import annotations

import subprocess

import httpx

from bot.ports import EvalResult

OUTPUT_CHARS = 300


class EvalRunner:
    def __init__(self, client: httpx.Client | None = None) -> None:
        self._client = client or httpx.Client(follow_redirects=False)

    def run(self, how: tuple[str, ...] | str, timeout: float) -> EvalResult:
        if isinstance(how, str):
            return self._ask(how, timeout)
        return self._execute(how, timeout)

    def _ask(self, url: str, timeout: float) -> EvalResult:
        try:
            response = self._client.get(url, timeout=timeout)
        except httpx.HTTPError as error:
            return EvalResult(False, f"{url} did not answer: {type(error).__name__}")
        if response.is_success:
            return EvalResult(True, f"{url} answered HTTP {response.status_code}")
        return EvalResult(False, f"{url} answered HTTP {response.status_code}: {response.text[:OUTPUT_CHARS]}")

    def _execute(self, argv: tuple[str, ...], timeout: float) -> EvalResult:
        shown = " ".join(argv)
        try:
            done = subprocess.run(list(argv), capture_output=True, text=True, timeout=timeout, check=False)
        except subprocess.TimeoutExpired:
            return EvalResult(False, f"`{shown}` did not finish within {timeout:.0f}s")
        except OSError as error:
            return EvalResult(False, f"`{shown}` could not be started: {error.strerror or error}")
        if done.returncode == 0:
            return EvalResult(True, f"`{shown}` passed")
        output = (done.stderr or done.stdout).strip()[-OUTPUT_CHARS:]
        return EvalResult(False, f"`{shown}` failed (exit {done.returncode})" + (f": {output}" if output else ""))
