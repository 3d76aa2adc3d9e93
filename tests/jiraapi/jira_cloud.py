"""A Jira Cloud-shaped server on 127.0.0.1, for what jira820 (Data Center 8.20) cannot show.

It answers as Jira Cloud did after Atlassian's CHANGE-2046 (2025), in the ways rollbot depends on:
- `serverInfo` says `"deploymentType": "Cloud"`;
- `GET/POST /rest/api/{2,3}/search` answer 410 Gone with Atlassian's message;
- `/rest/api/{2,3}/search/jql` (GET and POST) returns issue ids only unless fields are named,
  pages with `nextPageToken` (`isLast` on the last page), and sees an issue only
  `index_lag_seconds` after its create (the search index lags; `GET issue/{key}` does not);
- credentials must be Basic (email and API token): a bearer token is 401, as on Cloud;
- attachments need `X-Atlassian-Token: no-check` (403 otherwise) and multipart `file` parts;
- the per-project createmeta (`issue/createmeta/{project}/issuetypes[/{id}]`); the old
  `createmeta?expand=` is gone (404).
Faults on demand: `drop_create_answers` (the issue is made, the connection closes unanswered),
`fail_attachments` (413 Request Entity Too Large, before anything is stored).
Its JQL is what rollbot sends: `labels = "x"`, `project = X`, joined by AND, ORDER BY ignored;
anything else is a 400 as Jira gives for a field it does not know (never silently ignored).

    with JiraCloud() as cloud:
        JIRA_URL = cloud.url; cloud.created_with_label("rollbot-run-…")
"""

from __future__ import annotations

import base64
import json
import re
import threading
import time
from dataclasses import dataclass, field
from email.parser import BytesParser
from email.policy import HTTP
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlparse

REMOVED = (
    "The requested API has been removed. Please migrate to the /rest/api/3/search/jql API. A full migration "
    "guideline is available at https://developer.atlassian.com/changelog/#CHANGE-2046"
)
PROJECT_KEY = "OPS"
ISSUE_TYPES = {"10001": "Task", "10002": "Bug"}
CREATE_FIELDS = ("summary", "issuetype", "project", "description", "labels", "priority")
# The request body Atlassian documents for POST /rest/api/3/search/jql (SearchAndReconcileRequestBean);
# the stored 2024 spec predates the endpoint, so the server checks it: an unknown key is a 400.
SEARCH_JQL_KEYS = {
    "jql",
    "nextPageToken",
    "maxResults",
    "fields",
    "expand",
    "properties",
    "fieldsByKeys",
    "failFast",
    "reconcileIssues",
}
_CLAUSE = re.compile(r'^\s*(labels|project)\s*=\s*"?([^"\s]+)"?\s*$', re.IGNORECASE)


@dataclass
class Issue:
    id: str
    key: str
    fields: dict[str, Any]
    created: float
    attachments: list[dict[str, Any]] = field(default_factory=list)
    comments: list[str] = field(default_factory=list)


class JiraCloud:
    """State, faults and the record of what was asked; `url` once started."""

    def __init__(self, index_lag_seconds: float = 2.0, page_size: int = 2) -> None:
        self.index_lag_seconds = index_lag_seconds
        self.page_size = page_size  # small, so that paging is exercised
        self.issues: dict[str, Issue] = {}
        self.contents: dict[str, bytes] = {}
        self.requests: list[tuple[str, str]] = []  # (method, path) in order
        self.authorizations: set[str] = set()
        self.drop_create_answers = 0
        self.fail_attachments = 0
        self.lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None

    @property
    def url(self) -> str:
        assert self._server is not None, "start() first"
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def start(self) -> JiraCloud:
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _handler_for(self))
        threading.Thread(target=self._server.serve_forever, daemon=True, name="jira-cloud").start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()

    def __enter__(self) -> JiraCloud:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def created_with_label(self, label: str) -> list[str]:
        """Keys of every issue carrying `label`, index lag or not: the ground truth for 'exactly once'."""
        with self.lock:
            return [issue.key for issue in self.issues.values() if label in issue.fields.get("labels", [])]

    def attachment_names(self, key: str) -> list[str]:
        with self.lock:
            return [attachment["filename"] for attachment in self.issues[key].attachments]

    def attachment_bytes(self, key: str) -> dict[str, bytes]:
        with self.lock:
            return {a["filename"]: self.contents[a["id"]] for a in self.issues[key].attachments}

    def searched(self, path_part: str = "/search") -> list[str]:
        return [path for _, path in self.requests if path_part in path]


def _handler_for(cloud: JiraCloud) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args: object) -> None:  # quiet: the test reads `cloud.requests`
            pass

        def do_GET(self) -> None:
            self._route("GET")

        def do_POST(self) -> None:
            self._route("POST")

        def _route(self, method: str) -> None:
            parsed = urlparse(self.path)
            path, query = parsed.path.rstrip("/"), {k: v[-1] for k, v in parse_qs(parsed.query).items()}
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else b""
            with cloud.lock:
                cloud.requests.append((method, path))
                cloud.authorizations.add(self.headers.get("Authorization", ""))
            if not self._authorized():
                return self._json(
                    401,
                    {
                        "errorMessages": [
                            "You are not authenticated. Authentication required to perform this operation."
                        ],
                        "errors": {},
                    },
                )
            if re.fullmatch(r"/rest/api/[23]/serverInfo", path):
                return self._json(
                    200,
                    {
                        "baseUrl": cloud.url,
                        "version": "1001.0.0-SNAPSHOT",
                        "versionNumbers": [1001, 0, 0],
                        "deploymentType": "Cloud",
                        "buildNumber": 100290,
                        "serverTitle": "Jira",
                    },
                )
            if re.fullmatch(r"/rest/api/[23]/search", path):
                return self._json(410, {"errorMessages": [REMOVED], "errors": {}})
            if re.fullmatch(r"/rest/api/[23]/search/jql", path):
                return self._search(json.loads(body or b"{}") if method == "POST" else query)
            if method == "POST" and re.fullmatch(r"/rest/api/[23]/issue", path):
                return self._create(json.loads(body or b"{}"))
            match = re.fullmatch(r"/rest/api/[23]/issue/([A-Z]+-\d+)(/attachments|/comment)?", path)
            if match:
                return self._issue(method, match.group(1), match.group(2), query, body)
            match = re.fullmatch(r"/rest/api/[23]/attachment/content/(\d+)", path)
            if match and match.group(1) in cloud.contents:
                return self._bytes(200, cloud.contents[match.group(1)])
            match = re.fullmatch(r"/rest/api/[23]/issue/createmeta/([A-Z]+)/issuetypes(?:/(\d+))?", path)
            if match and match.group(1) == PROJECT_KEY:
                return self._createmeta(match.group(2))
            self._json(404, {"errorMessages": [f"no route {method} {path} on this Cloud-shaped Jira"], "errors": {}})

        def _authorized(self) -> bool:
            scheme, _, credentials = self.headers.get("Authorization", "").partition(" ")
            if scheme != "Basic":
                return False  # Cloud takes email + API token; a bearer PAT is Data Center's
            user, _, token = base64.b64decode(credentials).decode().partition(":")
            return bool(user and token)

        def _search(self, ask: dict[str, Any]) -> None:
            unknown = sorted(set(ask) - SEARCH_JQL_KEYS)
            if unknown or not isinstance(ask.get("fields", []), (list, str)):
                return self._json(400, {"errorMessages": [f"Unrecognized field(s) {unknown}"], "errors": {}})
            clauses = re.split(
                r"\s+AND\s+", re.split(r"\s+ORDER\s+BY\s+", str(ask.get("jql", "")), flags=re.I)[0], flags=re.I
            )
            wanted = [_CLAUSE.match(clause) for clause in clauses]
            if not all(wanted):
                return self._json(400, {"errorMessages": [f"Error in the JQL Query: {ask.get('jql')!r}"], "errors": {}})
            names = ask.get("fields") or []
            names = names.split(",") if isinstance(names, str) else list(names)
            now = time.time()
            with cloud.lock:
                seen = [
                    issue
                    for issue in cloud.issues.values()
                    if now - issue.created >= cloud.index_lag_seconds
                    and all(_matches(issue, m.group(1).lower(), m.group(2)) for m in wanted if m)
                ]
            start = int(ask.get("nextPageToken") or 0)
            size = min(int(ask.get("maxResults") or 50), cloud.page_size)
            page = seen[start : start + size]
            answer: dict[str, Any] = {
                "issues": [
                    {
                        "id": issue.id,
                        **({"key": issue.key, "fields": {n: issue.fields.get(n) for n in names}} if names else {}),
                    }
                    for issue in page
                ],
                "isLast": start + size >= len(seen),
            }
            if not answer["isLast"]:
                answer["nextPageToken"] = str(start + size)
            self._json(200, answer)

        def _create(self, ask: dict[str, Any]) -> None:
            fields = ask.get("fields") or {}
            errors = {
                name: f"Field '{name}' cannot be set. It is not on the appropriate screen, or unknown."
                for name in fields
                if name not in CREATE_FIELDS
            }
            if (fields.get("project") or {}).get("key") != PROJECT_KEY:
                errors["project"] = "valid project is required"
            if (fields.get("issuetype") or {}).get("name") not in ISSUE_TYPES.values():
                errors["issuetype"] = "Specify a valid issue type"
            if any(" " in label for label in fields.get("labels", [])):
                errors["labels"] = "The label must not contain spaces."
            if errors:
                return self._json(400, {"errorMessages": [], "errors": errors})
            with cloud.lock:
                number = len(cloud.issues) + 1
                issue = Issue(str(10000 + number), f"{PROJECT_KEY}-{number}", dict(fields), time.time())
                cloud.issues[issue.key] = issue
                drop = cloud.drop_create_answers > 0
                cloud.drop_create_answers -= 1 if drop else 0
            if drop:  # made, but the caller never hears of it
                self.close_connection = True
                self.connection.shutdown(2)
                return None
            self._json(201, {"id": issue.id, "key": issue.key, "self": f"{cloud.url}/rest/api/2/issue/{issue.id}"})

        def _issue(self, method: str, key: str, sub: str | None, query: dict[str, str], body: bytes) -> None:
            issue = cloud.issues.get(key)
            if issue is None:
                return self._json(
                    404,
                    {"errorMessages": ["Issue does not exist or you do not have permission to see it."], "errors": {}},
                )
            if sub == "/attachments" and method == "POST":
                return self._attach(issue, body)
            if sub == "/comment" and method == "POST":
                issue.comments.append(str(json.loads(body or b"{}").get("body", "")))
                return self._json(201, {"id": str(len(issue.comments)), "body": issue.comments[-1]})
            names = [n for n in (query.get("fields") or "").split(",") if n] or [*issue.fields, "attachment", "comment"]
            every = {
                **issue.fields,
                "attachment": issue.attachments,
                "comment": {"comments": [{"body": text} for text in issue.comments]},
            }
            self._json(
                200,
                {
                    "id": issue.id,
                    "key": issue.key,
                    "self": f"{cloud.url}/rest/api/2/issue/{issue.id}",
                    "fields": {name: every.get(name) for name in names},
                },
            )

        def _attach(self, issue: Issue, body: bytes) -> None:
            if self.headers.get("X-Atlassian-Token") != "no-check":
                return self._json(403, {"message": "XSRF check failed"})
            with cloud.lock:
                fail = cloud.fail_attachments > 0
                cloud.fail_attachments -= 1 if fail else 0
            if fail:
                return self._json(413, {"errorMessages": ["The attachment is too large."], "errors": {}})
            message = BytesParser(policy=HTTP).parsebytes(
                f"Content-Type: {self.headers.get('Content-Type')}\r\n\r\n".encode() + body
            )
            parts = [
                part for part in message.iter_parts() if part.get_param("name", header="content-disposition") == "file"
            ]
            if not parts:
                return self._json(400, {"errorMessages": ["no file part"], "errors": {}})
            made = []
            with cloud.lock:
                for part in parts:
                    data = part.get_payload(decode=True) or b""
                    attachment_id = str(20000 + len(cloud.contents))
                    cloud.contents[attachment_id] = data
                    meta = {
                        "id": attachment_id,
                        "filename": part.get_filename(),
                        "size": len(data),
                        "content": f"{cloud.url}/rest/api/3/attachment/content/{attachment_id}",
                        "self": f"{cloud.url}/rest/api/2/attachment/{attachment_id}",
                    }
                    issue.attachments.append(meta)
                    made.append(meta)
            self._json(200, made)

        def _createmeta(self, type_id: str | None) -> None:
            if type_id is None:
                return self._json(
                    200,
                    {
                        "issueTypes": [{"id": i, "name": n, "subtask": False} for i, n in ISSUE_TYPES.items()],
                        "maxResults": 50,
                        "startAt": 0,
                        "total": len(ISSUE_TYPES),
                    },
                )
            self._json(
                200,
                {
                    "fields": [
                        {
                            "fieldId": name,
                            "key": name,
                            "name": name.title(),
                            "required": name in ("summary", "issuetype", "project"),
                            "operations": ["set"],
                            "schema": {"type": "array" if name == "labels" else "string"},
                        }
                        for name in CREATE_FIELDS
                    ],
                    "maxResults": 200,
                    "startAt": 0,
                    "total": len(CREATE_FIELDS),
                },
            )

        def _json(self, status: int, data: object) -> None:
            self._bytes(status, json.dumps(data).encode(), "application/json;charset=UTF-8")

        def _bytes(self, status: int, data: bytes, kind: str = "application/octet-stream") -> None:
            self.send_response(status)
            self.send_header("Content-Type", kind)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

    return Handler


def _matches(issue: Issue, name: str, value: str) -> bool:
    if name == "labels":
        return value in issue.fields.get("labels", [])
    return issue.key.startswith(f"{value}-")
