"""Prism in proxy mode in front of jira820, checking every request against Atlassian's Jira
Cloud platform REST v2 description (contracts/, see its README).

    with Jira820() as jira, JiraPrism(jira.url) as prism:
        client = JIRA(server=prism.url, basic_auth=("rollbot", "token"), max_retries=0)
        client.create_issue(fields={...})
        assert prism.violations() == []

It is tests.slackapi.prism.Prism with the Jira spec, plus what Jira tests need to read from its
log. What Prism 5.14.2 does with this spec (found by running it, see test_jira_harness.py):
- Paths are forwarded unchanged (`url` has no prefix: the spec's server is the bare host) and
  the upstream's answer comes back unchanged (no `--errors`), with an `sl-violations` header.
- A request violation is logged as, e.g.
  `[VALIDATOR] ✖  error     Violation: request.query.validatequery Request query parameter validatequery must be equal to one of the allowed values: strict, warn, none, true, false`
  `[VALIDATOR] ✖  error     Violation: request.body.body Request body property body must be string`
  `[VALIDATOR] ✖  error     Violation: request.body Request body must have required property 'file'`
  `[VALIDATOR] ⚠  warning   Violation: request Selected route not found`
  (query parameter names are lower-cased in the location). The spec allows anonymous calls
  (`security: [..., {}]`), so no Authorization header is never a violation.
- Responses: jira820 answers in Data Center's shape, which breaks Cloud's response schemas
  on most calls (relative avatar URLs vs `format: uri`, `databaseBuildNumber`, `deleted`...):
  `response_violations()` is noise here; `violations()` (request side) is the contract check.
- Upstream down: Prism answers HTTP 500 `application/problem+json`
  `{"type":"FetchError","title":"request to http://…/rest/api/2/issue failed, reason: connect ECONNREFUSED …"}`
  and logs `[HTTP SERVER] post /rest/api/2/issue ✖  error     Request terminated with error: FetchError: …`
  (no Violation line): see `upstream_failures()`.
- Prism 5.14.2 CRASHES (the process exits) on a multipart/form-data part without its own
  Content-Type header (parse-multipart-data: "Cannot read properties of undefined (reading
  'trim')"). python-jira's add_attachment always sends one; a hand-made upload with
  requests' `files={"file": (name, data)}` (no type) does not. `violations()` here therefore
  raises PrismError when Prism is no longer running, rather than reporting a clean [].
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from tests.slackapi.prism import Prism, PrismError, Violation

JIRA_SPEC = Path(__file__).parent / "contracts" / "jira-cloud-platform-rest-v2_prism.json"
_RECEIVED = re.compile(r"\[HTTP SERVER\] (\w+) (\S+) \S+\s+info\s+Request received")
_TERMINATED = re.compile(r"\[HTTP SERVER\] (\w+) (\S+) \S+\s+error\s+Request terminated with error: (.*)$")


@dataclass(frozen=True)
class Received:
    """One request as Prism logged it on arrival."""

    method: str  # "GET", "POST"...
    path: str  # "/rest/api/2/issue/JIRA820-12" (no query string)

    def __str__(self) -> str:
        return f"{self.method} {self.path}"


@dataclass(frozen=True)
class UpstreamFailure:
    """A request Prism could not forward (jira820 down): the client got HTTP 500."""

    method: str
    path: str
    error: str  # "FetchError: request to http://127.0.0.1:…/rest/api/2/issue failed, reason: connect ECONNREFUSED …"


class JiraPrism(Prism):
    """`prism proxy <Jira v2 spec> <jira820 url>`; start-up takes 6-9 s (2 MB spec): share one per
    module and scope each test's checks with `mark()`."""

    def __init__(self, upstream: str, spec: Path | str = JIRA_SPEC, **kwargs: object) -> None:
        super().__init__(upstream, spec, **kwargs)

    @property
    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def assert_alive(self) -> None:
        if not self.alive:
            raise PrismError(
                f"prism is not running (exit code "
                f"{self.process.returncode if self.process else None}); "
                f"nothing it would have checked was checked. Log tail:\n{self._tail()}"
            )

    def violations(self, since: int | None = None) -> list[Violation]:
        """Requests that broke Atlassian's v2 spec (the bot's bugs). Raises PrismError if Prism
        died, so that a crash never reads as 'no violations'."""
        self.assert_alive()
        return super().violations(since)

    def received(self, since: int | None = None) -> list[Received]:
        """Every request that reached Prism since `since` (default: since it became ready)."""
        self._settle()
        text = self.log_text()[self._ready_offset if since is None else since :]
        return [
            Received(m.group(1).upper(), m.group(2).split("?", 1)[0])
            for m in map(_RECEIVED.search, text.splitlines())
            if m
        ]

    def upstream_failures(self, since: int | None = None) -> list[UpstreamFailure]:
        """Requests Prism could not forward because jira820 was unreachable."""
        self._settle()
        text = self.log_text()[self._ready_offset if since is None else since :]
        return [
            UpstreamFailure(m.group(1).upper(), m.group(2).split("?", 1)[0], m.group(3))
            for m in map(_TERMINATED.search, text.splitlines())
            if m
        ]
