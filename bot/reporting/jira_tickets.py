"""Postmortem tickets in Jira, Cloud or Data Center, through the python `jira` library (REST v2).

The two differ where it matters to rollbot. Cloud removed `/rest/api/{2,3}/search` (410 Gone,
Atlassian's CHANGE-2046): it is searched with `POST /rest/api/3/search/jql`, which pages with
`nextPageToken` and returns ids only unless fields are named; its credentials are an email and
an API token. Data Center keeps `/rest/api/2/search` and takes a personal access token as a
bearer. Which one is asked of `serverInfo` once (`deploymentType`), unless configured.

Descriptions are Jira wiki markup on REST v2, which both deployments render the same; see the
README for why not Atlassian Document Format.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any, Literal

from bot.errors import ConfigError, OutsideSystemError
from bot.ports import Postmortem, Ticket
from bot.reporting.postmortem import to_jira_wiki

Deployment = Literal["cloud", "datacenter"]
SEARCH_PAGE = 50
MAX_SEARCH_PAGES = 20


class AttachmentsMissing(OutsideSystemError):
    """The ticket exists but some attachments did not land; the next attempt adds only those."""

    def __init__(self, key: str, failures: dict[str, str]) -> None:
        self.failures = failures
        named = "; ".join(f"{name}: {why}" for name, why in failures.items())
        super().__init__(f"{key} is created; {len(failures)} attachment(s) not attached yet ({named})")


class JiraTickets:
    """One project, one issue type, the run's label on every ticket (how a lost create is found)."""

    def __init__(
        self,
        connect: Callable[[], Any],
        server: str,
        project: str,
        issue_type: str,
        labels: tuple[str, ...] = (),
        fields: dict[str, Any] | None = None,
        deployment: Literal["auto", "cloud", "datacenter"] = "auto",
        bearer: bool = False,
    ) -> None:
        self._connect = connect
        self._server = server.rstrip("/")
        self._project = project
        self._issue_type = issue_type
        self._labels = labels
        self._fields = fields or {}
        self._deployment: Deployment | None = None if deployment == "auto" else deployment
        self._bearer = bearer

    def deployment(self) -> Deployment:
        """Cloud or Data Center: configured, else `serverInfo`'s `deploymentType`, asked once."""
        if self._deployment is None:
            info = self._get("/rest/api/2/serverInfo")
            self._deployment = "cloud" if str(info.get("deploymentType", "")).lower() == "cloud" else "datacenter"
        if self._deployment == "cloud" and self._bearer:
            raise ConfigError(
                "environment: JIRA_URL is Jira Cloud, which takes JIRA_USER (the account's email) with "
                "JIRA_TOKEN (an API token); a bearer token is for Data Center"
            )
        return self._deployment

    def find(self, postmortem: Postmortem) -> Ticket | None:
        """The oldest issue carrying the run's label, if any. The labels are checked on each hit:
        a server that ignores a clause it does not know must not hand back a stranger's issue."""
        jql = f'labels = "{postmortem.label}" ORDER BY created ASC'
        issues = self._search_cloud(jql) if self.deployment() == "cloud" else self._search_datacenter(jql)
        keys = [
            issue["key"] for issue in issues if postmortem.label in ((issue.get("fields") or {}).get("labels") or [])
        ]
        return self._ticket(keys[0]) if keys else None

    def create(self, postmortem: Postmortem) -> Ticket:
        """One POST; its answer's key is the ticket. No read-back: a failing GET after a successful
        create would hide the key the caller must store at once."""
        issue = self._connect().create_issue(
            fields={
                "project": {"key": self._project},
                "issuetype": {"name": self._issue_type},
                "summary": postmortem.title[:250],
                "description": to_jira_wiki(postmortem),
                "labels": [postmortem.label, *self._labels],
                **self._fields,
            },
            prefetch=False,
        )
        return self._ticket(str(issue.key))

    def complete(self, ticket: Ticket, postmortem: Postmortem) -> None:
        """Attach what is not attached yet, each file on its own: one that fails (a 413, a timeout)
        does not keep the others off the ticket, and is tried again by the next attempt."""
        jira = self._connect()
        present = {attachment.get("filename") for attachment in self._attachments(ticket.key)}
        failures: dict[str, str] = {}
        for path in postmortem.attachments:
            if path.name in present:
                continue
            try:
                with path.open("rb") as handle:
                    jira.add_attachment(issue=ticket.key, attachment=handle, filename=path.name)
            except Exception as error:  # noqa: BLE001 - reported together below, retried later
                status = getattr(error, "status_code", None)
                failures[path.name] = f"HTTP {status}" if status else type(error).__name__
        if failures:
            raise AttachmentsMissing(ticket.key, failures)

    def problems(self) -> list[str]:
        """What is wrong with the configured project, issue type and labels, asked of `createmeta`
        at start: one line each, so an operator fixes the YAML before the first rollback."""
        try:
            fields = self._create_fields()
        except LookupError as missing:
            return [str(missing)]
        problems = [
            f"tickets.fields: {name} is not a field of {self._issue_type} issues in {self._project}"
            for name in self._fields
            if name not in fields
        ]
        if "labels" not in fields:
            problems.append(
                f"Jira: {self._issue_type} issues in {self._project} have no labels field; rollbot "
                "labels each ticket with its run id (add Labels to the project's create screen)"
            )
        problems += [
            f"tickets.labels: {label!r} is not a Jira label (no spaces)"
            for label in self._labels
            if not label or any(char.isspace() for char in label)
        ]
        return problems

    def _create_fields(self) -> set[str]:
        """The field ids of the configured issue type's create screen; LookupError names what is
        missing. Cloud and Data Center 9 have the per-project createmeta; 8.x only the old one."""
        jira = self._connect()
        url = f"{self._server}/rest/api/2/issue/createmeta/{self._project}/issuetypes"
        try:
            types = jira._session.get(url, params={"maxResults": 100}).json()
        except Exception as error:
            if getattr(error, "status_code", None) != 404:
                raise
        else:
            types = types.get("issueTypes", types.get("values", []))
            chosen = next((kind for kind in types if kind.get("name") == self._issue_type), None)
            if chosen is None:
                raise LookupError(self._no_issue_type([kind.get("name") for kind in types]))
            meta = jira._session.get(f"{url}/{chosen['id']}", params={"maxResults": 200}).json()
            return {field.get("fieldId") for field in meta.get("fields", meta.get("values", []))}
        old = self._get(
            "/rest/api/2/issue/createmeta", {"projectKeys": self._project, "expand": "projects.issuetypes.fields"}
        )
        project = next((p for p in old.get("projects", []) if p.get("key") == self._project), None)
        if project is None:
            raise LookupError(
                f"tickets.project: Jira has no project {self._project} that these credentials may create issues in"
            )
        kinds = project.get("issuetypes", [])
        chosen = next((kind for kind in kinds if kind.get("name") == self._issue_type), None)
        if chosen is None:
            raise LookupError(self._no_issue_type([kind.get("name") for kind in kinds]))
        return set(chosen.get("fields", {}))

    def _no_issue_type(self, names: list[Any]) -> str:
        return (
            f"tickets.issue_type: project {self._project} has no issue type {self._issue_type!r} "
            f"(it has: {', '.join(map(str, names))})"
        )

    def _search_cloud(self, jql: str) -> list[dict[str, Any]]:
        issues: list[dict[str, Any]] = []
        body: dict[str, Any] = {"jql": jql, "fields": ["labels"], "maxResults": SEARCH_PAGE}
        for _ in range(MAX_SEARCH_PAGES):
            page = self._post("/rest/api/3/search/jql", body)
            issues += page.get("issues", [])
            if page.get("isLast", True) or not page.get("nextPageToken"):
                break
            body = {**body, "nextPageToken": page["nextPageToken"]}
        return issues

    def _search_datacenter(self, jql: str) -> list[dict[str, Any]]:
        # validate_query as the string "true": the published spec's enum is lower case, and
        # Data Center (a boolean) accepts it.
        found = self._connect().search_issues(jql, maxResults=SEARCH_PAGE, fields="labels", validate_query="true")
        return [issue.raw for issue in found]

    def _attachments(self, key: str) -> list[dict[str, Any]]:
        issue = self._get(f"/rest/api/2/issue/{key}", {"fields": "attachment"})
        return list((issue.get("fields") or {}).get("attachment") or [])

    def _get(self, path: str, params: dict[str, Any] | None = None) -> dict[str, Any]:
        response = self._connect()._session.get(f"{self._server}{path}", params=params)
        return dict(response.json())

    def _post(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        response = self._connect()._session.post(
            f"{self._server}{path}", data=json.dumps(body), headers={"Content-Type": "application/json"}
        )
        return dict(response.json())

    def _ticket(self, key: str) -> Ticket:
        return Ticket(key, f"{self._server}/browse/{key}")
