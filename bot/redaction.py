"""Log redaction: the last guard that keeps secrets out of log lines.

rollbot builds its own messages from names and versions, never from settings, and the
clients it uses keep credentials out of theirs (slack_sdk writes `(redacted)` for the
Authorization header). This filter is for what no one foresaw: a library logging a request
at DEBUG, an exception whose text carries a URL with a password, a traceback of a bug. Every
record a root handler emits is searched for the values of rollbot's secrets, in the forms
they travel in (raw, URL-encoded, and the Basic credentials made of the Jira user and token),
and each is replaced by `[redacted]`.
"""

from __future__ import annotations

import base64
import logging
from collections.abc import Iterable
from urllib.parse import quote

from bot.config import Settings

MIN_REDACTED_LENGTH = 6  # shorter values would blank out ordinary words; such secrets are not secret
REDACTED = "[redacted]"


def secret_forms(settings: Settings) -> list[str]:
    """The secrets' values as they may appear in text, longest first."""
    values = set(settings.secret_values())
    if settings.jira_user and settings.jira_token:
        credentials = f"{settings.jira_user.get_secret_value()}:{settings.jira_token.get_secret_value()}"
        values.add(base64.b64encode(credentials.encode()).decode())
    values |= {quote(value, safe="") for value in values}
    return sorted((value for value in values if len(value) >= MIN_REDACTED_LENGTH), key=len, reverse=True)


class Redactor(logging.Filter):
    """Rewrites a record's message (and its exception and stack text) without the secrets."""

    def __init__(self, secrets: Iterable[str]) -> None:
        super().__init__()
        self._secrets = list(secrets)

    def __repr__(self) -> str:
        return f"Redactor({len(self._secrets)} values withheld)"

    def redact(self, text: str) -> str:
        for secret in self._secrets:
            if secret in text:
                text = text.replace(secret, REDACTED)
        return text

    def filter(self, record: logging.LogRecord) -> bool:
        if not self._secrets:
            return True
        record.msg, record.args = self.redact(record.getMessage()), None
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = self.redact(record.exc_text)
        if record.stack_info:
            record.stack_info = self.redact(record.stack_info)
        return True


def install(settings: Settings, logger: logging.Logger | None = None) -> Redactor:
    """Attach one redactor to every handler of `logger` (the root logger by default): a filter
    on a handler sees the records of every logger that propagates to it."""
    redactor = Redactor(secret_forms(settings))
    for handler in (logger or logging.getLogger()).handlers:
        for old in [f for f in handler.filters if isinstance(f, Redactor)]:
            handler.removeFilter(old)  # installed again (a second `main()` in one process): replace
        handler.addFilter(redactor)
    return redactor
