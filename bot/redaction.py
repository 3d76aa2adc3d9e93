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
import re
from collections.abc import Iterable
from urllib.parse import quote

from bot.config import Settings

MIN_REDACTED_LENGTH = 6  # shorter values would blank out ordinary words; such secrets are not secret
REDACTED = "[redacted]"

# Names that say "the value is a secret", matched anywhere in a name (`ENGINE_DBPASSWORD`,
# `traefik.http.middlewares.x.basicauth.users`, `splunk-token`): over-withholding a harmless
# value costs a postmortem little; leaking one costs a rotation.
SECRET_NAME = re.compile(
    r"pass(?:word|wd)?|pwd|token|secret|key|auth|credential|private|dsn|cookie|session|salt"
    r"|signature|cert",
    re.IGNORECASE,
)
_SECRET_SHAPES: tuple[tuple[re.Pattern[str], str], ...] = (
    # PEM private keys, whole blocks
    (re.compile(r"-----BEGIN [A-Z ]*PRIVATE KEY-----.*?(?:-----END [A-Z ]*PRIVATE KEY-----|\Z)", re.DOTALL), REDACTED),
    # Authorization: Bearer/Basic/Token <credentials>, and a bare "Bearer <token>"
    (
        re.compile(r"(?P<keep>\b(?:Bearer|Basic|Token|Digest)\s+)[A-Za-z0-9._~+/=:-]{6,}", re.IGNORECASE),
        rf"\g<keep>{REDACTED}",
    ),
    # scheme://user:password@host, the password may hold "/" (only "@" ends it, as in a URL)
    (re.compile(r"(?P<keep>\b[A-Za-z][A-Za-z0-9+.-]*://[^\s:/@]*:)[^\s@]+@"), rf"\g<keep>{REDACTED}@"),
    # Slack incoming webhooks and tokens, GitHub and AWS keys: known shapes without a name beside them
    (re.compile(r"(?P<keep>https://hooks\.slack\.com/)[^\s\"'<>]+"), rf"\g<keep>{REDACTED}"),
    (
        re.compile(
            r"\bxox[abposre]-[A-Za-z0-9-]{6,}|\bxapp-[A-Za-z0-9-]{6,}|\bgh[pousr]_[A-Za-z0-9]{16,}"
            r"|\bAKIA[0-9A-Z]{16}\b"
        ),
        REDACTED,
    ),
    # name=value, name: value, "name": "value", --name=value where the name says secret
    (
        re.compile(
            r"(?P<keep>[\w.-]*(?:" + SECRET_NAME.pattern + r")[\w.-]*[\"']?\s*[=:]\s*)"
            r"(?P<value>\"[^\"\n]*\"|'[^'\n]*'|[^\s,;&\"'}\]]+)",
            re.IGNORECASE,
        ),
        rf"\g<keep>{REDACTED}",
    ),
)


def redact_shapes(text: str) -> str:
    """Withhold what looks like a secret by its shape: bearer and basic credentials, URL
    passwords, Slack webhooks and tokens, private keys, and `name=value` pairs whose name says
    secret. For text rollbot did not write (the Engine's logs, its command line): its secrets
    are not rollbot's, so their values cannot be known, only recognised."""
    for pattern, replacement in _SECRET_SHAPES:
        text = pattern.sub(replacement, text)
    return text


def is_secret_name(name: str) -> bool:
    return bool(SECRET_NAME.search(name))


class TextRedactor:
    """For evidence and ticket text: rollbot's own secrets by value, then everything by shape."""

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        self._secrets = list(secrets)

    def __repr__(self) -> str:
        return f"TextRedactor({len(self._secrets)} values withheld)"

    def __call__(self, text: str) -> str:
        for secret in self._secrets:
            if secret in text:
                text = text.replace(secret, REDACTED)
        return redact_shapes(text)


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
