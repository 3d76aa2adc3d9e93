"""The Jira test infrastructure, tested with the real client: python `jira` 3.x against jira820
(tests.jiraapi.jira_server), through Prism serving Atlassian's v2 spec (tests.jiraapi.jira_prism),
including Jira going away and coming back on the same port.

Prism and jira820 are required, never skipped: a contract check that silently does not run
proves nothing.
"""

from __future__ import annotations

import io
import json
import sys
import time
import uuid
from collections.abc import Iterator
from types import SimpleNamespace

import pytest
import requests
from jira import JIRA, JIRAError, resilientsession

from tests.jiraapi.jira_prism import JiraPrism, Received
from tests.jiraapi.jira_server import ISSUE_TYPES, PROJECT_KEY, SERVER_VERSION, Jira820, Jira820Error
from tests.slackapi.prism import PrismError, free_port

AUTH = ("rollbot", "test-api-token")


def client(url: str, **kwargs: object) -> JIRA:
    """The client as the bot would build it; tests add max_retries / timeout / get_server_info."""
    return JIRA(server=url, basic_auth=AUTH, **kwargs)


def label() -> str:
    return f"rollbot-{uuid.uuid4().hex[:12]}"


def new_issue(jira_client: JIRA, *labels: str, summary: str = "Rollback engine 2.4.0 -> 2.3.1"):
    return jira_client.create_issue(
        fields={
            "project": {"key": PROJECT_KEY},
            "summary": summary,
            "issuetype": {"name": "Task"},
            "description": "Rolled back by rollbot.",
            "labels": list(labels),
        }
    )


def fail_with(problem: str) -> None:
    pytest.fail(problem, pytrace=False)


# ---- fixtures: one jira820 and one Prism per module (Prism takes 6-9 s to start) -------------


@pytest.fixture(scope="module")
def jira(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Jira820]:
    where = tmp_path_factory.mktemp("jira820")
    server = Jira820(state_path=where / "state.json", log_path=where / "jira820.log")
    problem = None
    try:
        server.start()
    except Jira820Error as error:
        problem = str(error)
    if problem:
        fail_with(problem)
    yield server
    server.close()


@pytest.fixture(scope="module")
def prism(jira: Jira820, tmp_path_factory: pytest.TempPathFactory) -> Iterator[JiraPrism]:
    proxy = JiraPrism(jira.url, log_path=tmp_path_factory.mktemp("prism") / "prism.log")
    problem = None
    try:
        proxy.start()
    except PrismError as error:
        problem = str(error)
    if problem:
        fail_with(problem)
    yield proxy
    proxy.stop()


@pytest.fixture
def running(jira: Jira820) -> Iterator[Jira820]:
    """The module's jira820, guaranteed up (and thawed) again after a test that took it down."""
    jira.start()
    yield jira
    jira.thaw()
    jira.start()


# ---- what jira820 is -------------------------------------------------------------------------


def test_jira820_answers_as_jira_dc_8_20(running: Jira820, prism: JiraPrism) -> None:
    info = running.get_json("/rest/api/2/serverInfo")
    assert (info["version"], info["deploymentType"]) == (SERVER_VERSION, "Server")
    assert [p["key"] for p in running.get_json("/rest/api/2/project")] == [PROJECT_KEY]

    mark = prism.mark()
    jc = client(prism.url, max_retries=0)
    assert jc.server_info()["versionNumbers"] == [8, 20, 8]
    assert not jc._is_cloud  # so search_issues() uses /rest/api/2/search, not Cloud's search/jql
    assert [p.key for p in jc.projects()] == [PROJECT_KEY]
    assert tuple(t.name for t in jc.issue_types()) == ISSUE_TYPES
    assert prism.violations(since=mark) == []


def test_construction_calls_server_info_unless_told_not_to(running: Jira820, prism: JiraPrism) -> None:
    mark = prism.mark()
    client(prism.url, max_retries=0)
    assert prism.received(since=mark) == [Received("GET", "/rest/api/2/serverInfo")]
    assert prism.violations(since=mark) == []  # serverInfo is in the spec; the call is clean
    # ...but Jira DC's answer is not Cloud's shape (response side only, not the bot's fault)
    assert any("databaseBuildNumber" in v.message for v in prism.response_violations(since=mark))

    mark = prism.mark()
    jc = client(prism.url, max_retries=0, get_server_info=False)
    assert prism.received(since=mark) == []
    assert jc._version == (0, 0, 0) and not jc._is_cloud


# ---- the bot's calls through Prism, with zero request violations -----------------------------


def test_issue_with_labels_search_attachment_comment_through_prism(running: Jira820, prism: JiraPrism) -> None:
    tag = label()
    mark = prism.mark()
    jc = client(prism.url, max_retries=0, get_server_info=False)

    issue = new_issue(jc, "rollbot", tag)
    assert issue.key.startswith(f"{PROJECT_KEY}-")
    assert sorted(issue.fields.labels) == sorted(["rollbot", tag])

    found = jc.search_issues(f'labels = "{tag}"', validate_query="true")
    assert [i.key for i in found] == [issue.key]

    attachment = jc.add_attachment(
        issue=issue.key, attachment=io.BytesIO(b"step 3/5: compose up\n"), filename="rollback.log"
    )
    comment = jc.add_comment(issue.key, "Rollback finished: engine 2.3.1 healthy.")

    meta = jc.attachment(attachment.id)
    assert (meta.filename, meta.size) == ("rollback.log", 21)
    assert meta.get() == b"step 3/5: compose up\n"
    assert [a.id for a in jc.issue(issue.key).fields.attachment] == [attachment.id]
    assert [c.body for c in jc.comments(issue.key)] == [comment.body]

    assert prism.violations(since=mark) == []
    assert prism.received(since=mark) == [
        Received("POST", "/rest/api/2/issue"),
        Received("GET", f"/rest/api/2/issue/{issue.key}"),  # create_issue's prefetch
        Received("GET", "/rest/api/2/field"),  # search_issues fills its field-name cache once
        Received("GET", "/rest/api/2/search"),
        Received("POST", f"/rest/api/2/issue/{issue.key}/attachments"),
        Received("POST", f"/rest/api/2/issue/{issue.key}/comment"),
        Received("GET", f"/rest/api/2/attachment/{attachment.id}"),
        Received("GET", f"/rest/api/2/issue/{issue.key}"),
        Received("GET", f"/rest/api/2/issue/{issue.key}/comment"),
    ]
    # The bytes came from the `content` URL, which jira820 makes point at itself (Prism sends
    # it the upstream Host): read around Prism, so never checked, never a violation.
    assert meta.content == f"{running.url}/secure/attachment/{attachment.id}/rollback.log"
    assert running.issues_labelled(tag) == [issue.key]


def test_default_search_sends_validate_query_that_breaks_the_spec(running: Jira820, prism: JiraPrism) -> None:
    """python-jira sends validateQuery=True (Python's spelling); the spec's enum is lower case."""
    mark = prism.mark()
    jc = client(prism.url, max_retries=0, get_server_info=False)
    jc.search_issues('labels = "mock"', maxResults=1)
    [violation] = prism.violations(since=mark)
    assert (violation.severity, violation.location, violation.message) == (
        "error",
        "request.query.validatequery",
        "Request query parameter validatequery must be equal to one of the allowed values: "
        "strict, warn, none, true, false",
    )
    assert "[VALIDATOR] ✖  error     Violation: request.query.validatequery" in violation.line
    mark = prism.mark()
    jc.search_issues('labels = "mock"', maxResults=1, validate_query="strict")
    assert prism.violations(since=mark) == []


def test_bad_requests_are_reported_one_line_each(running: Jira820, prism: JiraPrism) -> None:
    key = running.search('labels = "mock"', max_results=1)[0]["key"]
    base = prism.url.rstrip("/")

    mark = prism.mark()
    answer = requests.post(f"{base}/rest/api/2/issue/{key}/comment", json={"body": 5}, auth=AUTH, timeout=10)
    assert answer.status_code == 201  # no --errors: jira820's answer comes back unchanged...
    assert [str(v) for v in prism.violations(since=mark)] == [
        "error: request.body.body Request body property body must be string"
    ]
    assert "request" in json.loads(answer.headers["sl-violations"])[0]["location"]  # ...flagged

    mark = prism.mark()
    answer = requests.post(
        f"{base}/rest/api/2/issue/{key}/attachments",
        auth=AUTH,
        timeout=10,
        headers={"X-Atlassian-Token": "no-check"},
        files={"upload": ("a.txt", b"x", "text/plain")},
    )
    assert answer.status_code == 422  # jira820 (FastAPI) wants the field `file` too
    assert [str(v) for v in prism.violations(since=mark)] == [
        "error: request.body Request body must have required property 'file'"
    ]

    mark = prism.mark()
    requests.get(f"{base}/rest/api/2/attachment/content/1", auth=AUTH, timeout=10)  # Cloud only
    requests.get(f"{base}/rest/api/2/no-such-resource", auth=AUTH, timeout=10)
    assert [str(v) for v in prism.violations(since=mark)] == ["warning: request Selected route not found"]


def test_violation_parser_reads_prism_5_14_2_jira_lines(tmp_path) -> None:
    log = tmp_path / "prism.log"
    log.write_text(
        "[5:01:15 AM] › [CLI] ▶  start     Prism is listening on http://127.0.0.1:34603\n"
        "[4:57:03 AM] › [HTTP SERVER] get /rest/api/2/search ℹ  info      Request received\n"
        "[4:57:03 AM] ›     [VALIDATOR] ✖  error     Violation: request.query.validatequery Request query "
        "parameter validatequery must be equal to one of the allowed values: strict, warn, none, true, false\n"
        "[4:57:04 AM] ›     [VALIDATOR] ✖  error     Violation: response.body.author.avatarUrls.16x16 "
        'Response body property author.avatarUrls.16x16 must match format "uri"\n'
        "[4:57:54 AM] › [HTTP SERVER] post /rest/api/2/issue ✖  error     Request terminated with error: "
        "FetchError: request to http://127.0.0.1:8091/rest/api/2/issue failed, reason: connect ECONNREFUSED "
        "127.0.0.1:8091\n",
        encoding="utf-8",
    )
    proxy = JiraPrism("http://127.0.0.1:1", log_path=log)
    proxy.process = SimpleNamespace(poll=lambda: None, returncode=None)  # "running"
    assert [str(v) for v in proxy.violations()] == [
        "error: request.query.validatequery Request query parameter validatequery must be equal to "
        "one of the allowed values: strict, warn, none, true, false"
    ]
    assert [v.location for v in proxy.response_violations()] == ["response.body.author.avatarUrls.16x16"]
    assert proxy.received() == [Received("GET", "/rest/api/2/search")]
    [failure] = proxy.upstream_failures()
    assert (failure.method, failure.path) == ("POST", "/rest/api/2/issue")
    assert "ECONNREFUSED" in failure.error


# ---- jira820's own behaviour, worth knowing when writing product tests -----------------------


def test_jira820_jql_and_custom_field_quirks(running: Jira820) -> None:
    tag = label()
    jc = client(running.url, max_retries=0, get_server_info=False)
    issue = jc.create_issue(
        fields={
            "project": {"key": PROJECT_KEY},
            "summary": "custom fields",
            "issuetype": {"name": "Bug"},
            "labels": [tag],
            "customfield_10004": 3,
            "customfield_12345": "rollback-id",
        }
    )
    fields = jc.issue(issue.key).raw["fields"]
    assert fields["customfield_10004"] == 3  # story points: one of the three it keeps
    assert "customfield_12345" not in fields  # any other custom field is dropped silently

    assert running.issues_labelled(tag) == [issue.key]
    assert [i["key"] for i in running.search(f"labels = {tag} AND project = {PROJECT_KEY}")] == [issue.key]
    # An unknown clause is ignored, not refused: a misspelt field matches every issue.
    assert len(running.search(f'label = "{tag}"')) > 300

    with pytest.raises(JIRAError) as bad_type:
        jc.create_issue(fields={"project": {"key": PROJECT_KEY}, "summary": "x", "issuetype": {"name": "Incident"}})
    assert bad_type.value.status_code == 400
    with pytest.raises(JIRAError) as no_issue:
        jc.add_comment(f"{PROJECT_KEY}-999999", "x")
    assert no_issue.value.status_code == 404


# ---- Jira down, hung, and back ---------------------------------------------------------------


def test_stopped_jira_direct_is_a_connection_error_at_once_with_max_retries_0(running: Jira820) -> None:
    jc = client(running.url, max_retries=0, get_server_info=False)
    running.stop()
    began = time.monotonic()
    with pytest.raises(requests.ConnectionError):
        new_issue(jc, label())
    assert time.monotonic() - began < 1.0
    with pytest.raises(requests.ConnectionError):  # get_server_info=True fails at construction
        client(running.url, max_retries=0)


def test_default_retries_wait_a_minute_or_two_on_connection_errors(monkeypatch: pytest.MonkeyPatch) -> None:
    """max_retries=3 (the default): 3 sleeps of min(60, 10*2**n) * U(0.5, 1) s, n = 1..3, i.e.
    60-120 s in all before ConnectionError (measured: 72 s for a create, 93 s for JIRA(...)).
    Only ConnectionError (incl. ConnectTimeout) and 429/503 answers are retried; a read
    timeout and any other status are raised at once. Sleeps recorded here instead of slept."""
    delays: list[float] = []
    monkeypatch.setattr(resilientsession, "time", SimpleNamespace(sleep=delays.append))
    nowhere = f"http://127.0.0.1:{free_port()}"
    with pytest.raises(requests.ConnectionError):
        new_issue(client(nowhere, get_server_info=False), label())
    assert len(delays) == 3
    for delay, (low, high) in zip(delays, [(10, 20), (20, 40), (30, 60)], strict=True):
        assert low <= delay <= high
    delays.clear()
    with pytest.raises(requests.ConnectionError):
        new_issue(client(nowhere, get_server_info=False, max_retries=0), label())
    assert delays == []


def test_stopped_jira_through_prism_is_http_500_at_once(running: Jira820, prism: JiraPrism) -> None:
    jc = client(prism.url, get_server_info=False)  # default max_retries=3: 500 is not retried
    running.stop()
    mark = prism.mark()
    began = time.monotonic()
    with pytest.raises(JIRAError) as down:
        new_issue(jc, label())
    assert time.monotonic() - began < 2.0
    assert down.value.status_code == 500
    assert down.value.text == ""  # python-jira finds no Jira error message in Prism's answer:
    problem = down.value.response.json()  # application/problem+json
    assert problem["type"] == "FetchError" and "ECONNREFUSED" in problem["title"]
    assert prism.received(since=mark) == [Received("POST", "/rest/api/2/issue")]  # no retry
    [failure] = prism.upstream_failures(since=mark)
    assert failure.path == "/rest/api/2/issue" and "ECONNREFUSED" in failure.error
    assert prism.violations(since=mark) == []


def test_stop_start_same_port_keeps_data_and_the_client_works_again(running: Jira820, prism: JiraPrism) -> None:
    tag = label()
    jc = client(prism.url, max_retries=0, get_server_info=False)
    issue = new_issue(jc, tag)
    jc.add_attachment(issue=issue.key, attachment=io.BytesIO(b"before restart"), filename="a.log")
    before = jc.add_comment(issue.key, "before restart")
    url, starts = running.url, running.starts

    running.stop()
    assert not running.running
    with pytest.raises(JIRAError):
        jc.add_comment(issue.key, "while down")
    running.start()

    assert (running.url, running.starts) == (url, starts + 1)
    mark = prism.mark()
    assert [i.key for i in jc.search_issues(f'labels = "{tag}"', validate_query="true")] == [issue.key]
    [attachment] = jc.issue(issue.key).fields.attachment
    assert attachment.get() == b"before restart"
    after = jc.add_comment(issue.key, "after restart")
    assert sorted(c.body for c in jc.comments(issue.key)) == ["after restart", "before restart"]
    assert prism.violations(since=mark) == []
    # jira820 quirk: its comment id counter restarts with the process, so ids can repeat.
    assert after.id == before.id
    assert f"=== jira820 start {running.starts} on" in running.log_text()
    assert f'"POST /rest/api/2/issue/{issue.key}/comment HTTP/1.1" 201' in running.log_text()


def test_frozen_jira_times_out_yet_the_create_happens_after(running: Jira820, prism: JiraPrism) -> None:
    """A timed-out create is not a create that did not happen: check by label before retrying."""
    tag = label()
    jc = client(prism.url, max_retries=0, get_server_info=False, timeout=1.0)
    running.freeze()
    began = time.monotonic()
    with pytest.raises(requests.ReadTimeout):
        new_issue(jc, tag)
    assert 0.9 < time.monotonic() - began < 3.0
    running.thaw()
    deadline = time.monotonic() + 10
    while not running.issues_labelled(tag) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert len(running.issues_labelled(tag)) == 1


def test_without_persist_each_start_is_a_fresh_jira(tmp_path) -> None:
    with Jira820(persist=False, project_key="OPS", log_path=tmp_path / "ops.log") as ops:
        jc = client(ops.url, max_retries=0, get_server_info=False)
        tag = label()
        issue = jc.create_issue(
            fields={"project": {"key": "OPS"}, "summary": "x", "issuetype": {"name": "Task"}, "labels": [tag]}
        )
        assert issue.key.startswith("OPS-") and ops.state_path is None
        ops.restart()
        assert ops.issues_labelled(tag) == []
        assert ops.search("project = OPS", max_results=1)  # freshly seeded, same port


def test_reset_forgets_changes_and_keeps_the_port(tmp_path) -> None:
    server = Jira820(log_path=tmp_path / "jira.log")
    try:
        server.start()
        tag = label()
        new_issue(client(server.url, max_retries=0, get_server_info=False), tag)
        assert server.state_path.is_file() and len(server.issues_labelled(tag)) == 1
        port = server.port
        server.reset()
        assert server.port == port and server.issues_labelled(tag) == []
    finally:
        server.close()
    assert not server.state_path.exists()  # close() removed the harness's temp dir


def test_jira820_that_cannot_start_fails_loudly(tmp_path) -> None:
    broken = Jira820(command=[sys.executable, "-c", "import no_such_module_jira820"], log_path=tmp_path / "broken.log")
    try:
        with pytest.raises(Jira820Error, match=r"exited with 1 .*Install it with"):
            broken.start()
        assert not broken.running
    finally:
        broken.close()


def test_prism_crash_is_reported_not_read_as_no_violations(running: Jira820, tmp_path) -> None:
    """Prism 5.14.2 exits on a multipart part without its own Content-Type (python-jira always
    sends one; requests' files={"file": (name, data)} does not)."""
    key = running.search('labels = "mock"', max_results=1)[0]["key"]
    with JiraPrism(running.url, log_path=tmp_path / "prism.log") as proxy:
        with pytest.raises(requests.ConnectionError):
            requests.post(
                f"{proxy.url}rest/api/2/issue/{key}/attachments",
                auth=AUTH,
                timeout=10,
                headers={"X-Atlassian-Token": "no-check"},
                files={"file": ("a.txt", b"x")},
            )
        proxy.process.wait(timeout=5)
        assert not proxy.alive
        assert "Cannot read properties of undefined (reading 'trim')" in proxy.log_text()
        with pytest.raises(PrismError, match="prism is not running"):
            proxy.violations()
