"""A small, stateful Slack Web API for tests, served in-process on 127.0.0.1.

Why: Prism's mock is stateless (one fixed `ts`, one fixed channel), so it cannot show that the bot
edits the message it posted, replies in the right thread or stops after a 429. This server keeps
what a workspace would keep (messages by channel and `ts`, every edit, ephemerals, what was posted
to a `response_url`) and answers in Slack's shapes (HTTP 200 `{"ok": false, "error": ...}` for API
errors, 429 + `Retry-After` when rate limited). Put `tests.slackapi.prism.Prism` in front of it to
have every request checked against Slack's published spec as well.

    with FakeSlack() as slack:
        client = WebClient(token="xoxb-test", base_url=slack.url)
        client.chat_postMessage(channel="C0123ABCD", text="hi")
        assert slack.messages("C0123ABCD")[0]["text"] == "hi"

Use Slack-shaped ids (channel `C` + 8 or more of A-Z0-9, user `U...`): the spec's response
schemas check those patterns, and the fake echoes the ids it is given.
"""

from __future__ import annotations

import base64
import copy
import json
import threading
import time
import uuid
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, urlsplit

FIRST_TS = 1_700_000_000_000_100  # microseconds: the first message gets "1700000000.000100"
MAX_BLOCKS = 50  # Slack refuses more blocks than this in one message (invalid_blocks)
MAX_SECTION_TEXT = 3000  # nor a section whose text is longer than this
MAX_TEXT = 40000  # a longer top-level text is truncated to this (Slack's documented behaviour)


@dataclass
class Call:
    """One request as the fake received it. `params` are parsed but not coerced: a form body gives
    strings (`blocks` still JSON text), a JSON body gives what was sent. `status` is the HTTP
    status the fake answered with (None while the call is still being answered)."""

    method: str  # "chat.postMessage"; "response" for a POST to a response_url
    params: dict[str, Any]
    time: float
    path: str
    token: str | None = None
    content_type: str = ""
    status: int | None = None


@dataclass
class _Fault:
    status: int
    retry_after: int
    times: int
    channel: str | None = None


class SlackError(Exception):
    """An API error: answered as HTTP 200 `{"ok": false, "error": <args[0]>}`, as Slack does."""


@dataclass(eq=False)
class FakeSlack:
    """The fake workspace and its HTTP server.

    `usergroups` maps a user group id to its member ids (tests set and change it freely).
    `channels` / `users` map ids to names; left as None, any id exists and gets a made-up name,
    given as a dict, an id not in it gets `channel_not_found` / `user_not_found`.
    With `channels` given, `conversations.list` lists them (ids in `private_channels` as private
    channels the bot is in, ids in `archived_channels` as archived) at most `list_page_size` a
    page, and chat.postMessage takes `#name` as Slack does (answering with the id), while
    chat.update, like Slack, wants the id.
    `tokens`: None accepts any bearer token; a set accepts only those (else `invalid_auth`).
    `socket_mode_url`: what `apps.connections.open` hands an app-level (`xapp-`) token, e.g. a
    `FakeSocketMode().url`; None answers it as a workspace where Socket Mode is not available.
    """

    host: str = "127.0.0.1"
    port: int = 0
    usergroups: dict[str, list[str]] = field(default_factory=dict)
    channels: dict[str, str] | None = None
    users: dict[str, str] | None = None
    private_channels: set[str] = field(default_factory=set)
    archived_channels: set[str] = field(default_factory=set)
    list_page_size: int = 1000  # Slack's own cap on `limit`; tests lower it to see paging
    tokens: set[str] | None = None
    team_id: str = "T0ROLLBOT"
    bot_user_id: str = "U0ROLLBOT"
    bot_id: str = "B0ROLLBOT"
    socket_mode_url: str | None = None
    calls: list[Call] = field(default_factory=list, init=False, repr=False)  # every request, in arrival order

    def __post_init__(self) -> None:
        self._lock = threading.RLock()
        self._server: ThreadingHTTPServer | None = None
        self._reset_state()

    def _reset_state(self) -> None:
        self._clock = FIRST_TS
        self._store: dict[str, dict[str, list[dict]]] = {}  # channel -> ts -> versions
        self._ephemerals: list[dict] = []
        self._responses: list[tuple[str, dict]] = []
        self._faults: dict[str, list[_Fault]] = {}
        self._delays: dict[str, float] = {}
        self._views: list[dict] = []  # every view opened or updated, oldest first
        self._files: dict[str, dict] = {}  # file id -> name, length, bytes, title, channel, thread_ts

    def start(self) -> FakeSlack:
        """Listen on host:port (port 0 = a free one, see `.port` afterwards) in a daemon thread."""
        handler = type("Handler", (_Handler,), {"fake": self})
        self._server = ThreadingHTTPServer((self.host, self.port), handler)
        self._server.daemon_threads = True
        self.port = self._server.server_address[1]
        threading.Thread(target=self._server.serve_forever, name="fake-slack", daemon=True).start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def __enter__(self) -> FakeSlack:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def url(self) -> str:
        """Base URL for `WebClient(base_url=...)` / SLACK_API_URL; ends with '/' because slack_sdk
        joins it with the method name (urljoin would drop a last path segment without it)."""
        return f"http://{self.host}:{self.port}/"

    def response_url(self, id: str | None = None) -> str:
        """A `response_url` to put in a slash command or block action; posts to it are kept under
        `id` (a fresh one when omitted). It points at the fake itself, never through Prism:
        response_url is not a Web API method and the spec does not describe it."""
        return f"{self.url}response/{id or uuid.uuid4().hex}"

    def reset(self) -> None:
        """Forget messages, ephemerals, responses, calls, faults and delays (keeps the server)."""
        with self._lock:
            self.calls.clear()
            self._reset_state()

    def fail(
        self, method: str, status: int = 429, retry_after: int = 1, times: int = 1, channel: str | None = None
    ) -> None:
        """Make the next `times` calls of `method` fail: 429 answers `Retry-After: retry_after` and
        `{"ok": false, "error": "ratelimited"}` like Slack; 500/503 answer a server error. The
        method is not performed. Use method "response" for posts to a response_url. With
        `channel`, only calls naming that channel fail (Slack rate-limits posting per channel)."""
        with self._lock:
            self._faults.setdefault(method, []).append(_Fault(status, retry_after, times, channel))

    def delay(self, method: str, seconds: float) -> None:
        """Make every call of `method` take `seconds` longer (0 removes the delay): for testing
        the 3-second ack budget and client timeouts."""
        with self._lock:
            self._delays[method] = seconds

    def messages(self, channel: str, *, replies: bool = False) -> list[dict]:
        """Current version of the channel's messages in `ts` order. Like conversations.history,
        thread replies are left out unless `replies=True`."""
        with self._lock:
            msgs = [v[-1] for v in self._store.get(channel, {}).values()]
            if not replies:
                msgs = [m for m in msgs if m.get("thread_ts", m["ts"]) == m["ts"]]
            return copy.deepcopy(sorted(msgs, key=lambda m: m["ts"]))  # all ts are 10.6 digits

    def thread(self, channel: str, ts: str) -> list[dict]:
        """Like conversations.replies: the parent message first, then its replies in `ts` order."""
        return [m for m in self.messages(channel, replies=True) if m["ts"] == ts or m.get("thread_ts") == ts]

    def edit_history(self, channel: str, ts: str) -> list[dict]:
        """Every version of one message: [as posted, after 1st chat.update, ...]; [] if unknown."""
        with self._lock:
            return copy.deepcopy(self._store.get(channel, {}).get(ts, []))

    def ephemerals(self, user: str | None = None) -> list[dict]:
        """chat.postEphemeral messages (channel, user, text, blocks, message_ts...), oldest first."""
        with self._lock:
            return copy.deepcopy([e for e in self._ephemerals if user is None or e["user"] == user])

    def responses(self, id: str | None = None) -> list[dict]:
        """JSON bodies posted to response_url(s) (all, or those of one id), oldest first."""
        with self._lock:
            return copy.deepcopy([body for rid, body in self._responses if id is None or rid == id])

    def views(self) -> list[dict]:
        """Modals opened (views.open) and updated (views.update), oldest first: each the view as
        sent plus `id`, `trigger_id` (opened) and `method`."""
        with self._lock:
            return copy.deepcopy(self._views)

    def files(self, channel: str | None = None, thread_ts: str | None = None) -> list[dict]:
        """Files shared with files.completeUploadExternal (name, title, content bytes, channel,
        thread_ts), oldest first; of one channel, and of one thread in it, when given."""
        with self._lock:
            shared = [f for f in self._files.values() if f.get("channel")]
            return copy.deepcopy(
                [
                    f
                    for f in shared
                    if (channel is None or f["channel"] == channel)
                    and (thread_ts is None or f["thread_ts"] == thread_ts)
                ]
            )

    def calls_to(self, method: str) -> list[Call]:
        with self._lock:
            return [c for c in self.calls if c.method == method]

    def _handle(self, req: BaseHTTPRequestHandler) -> None:
        parts = urlsplit(req.path)
        raw = req.rfile.read(int(req.headers.get("Content-Length") or 0))
        ctype = req.headers.get("Content-Type", "")
        auth = req.headers.get("Authorization", "")
        token = (auth[7:].strip() or None) if auth[:7].lower() == "bearer " else None
        name = parts.path.lstrip("/")
        method = "response" if name.startswith("response/") else name
        method = "upload" if name.startswith("upload/") else method
        try:
            params, problem = ({}, None) if method == "upload" else (_parse(ctype, raw, parts.query), None)
        except ValueError as error:
            params, problem = {}, str(error)
        call = Call(method, params, time.time(), parts.path, token, ctype.split(";")[0].strip())
        with self._lock:
            self.calls.append(call)
            fault, pause = self._take_fault(method, params), self._delays.get(method, 0)
        time.sleep(pause)
        status, extra = 200, {}
        if fault is not None and fault.status == 429:  # the method is not performed
            status, body = 429, {"ok": False, "error": "ratelimited"}
            extra = {"Retry-After": str(fault.retry_after)}
        elif fault is not None:
            status, body = fault.status, {"ok": False, "error": "fatal_error"}
        elif problem:
            body = {"ok": False, "error": problem}
        elif method == "response":
            with self._lock:
                self._responses.append((name.split("/", 1)[1], params))
            body = {"ok": True}
        elif method == "upload":
            status, body = self._upload(name.split("/", 1)[1], raw)
        else:
            body = self._api(method, params, token)
        call.status = status
        data = json.dumps(body).encode()
        req.send_response(status)
        # One request per connection, said out loud: a keep-alive client (Prism's Node agent) that
        # was not told would put the socket back in its pool while this server closes it after a
        # `Connection: close` request, and its next request on it dies with "socket hang up".
        req.close_connection = True
        for key, value in {
            "Content-Type": "application/json; charset=utf-8",
            "Content-Length": str(len(data)),
            "Connection": "close",
            **extra,
        }.items():
            req.send_header(key, value)
        req.end_headers()
        req.wfile.write(data)

    def _take_fault(self, method: str, params: dict[str, Any]) -> _Fault | None:
        queue = self._faults.get(method) or []
        fault = next((f for f in queue if f.channel is None or f.channel == params.get("channel")), None)
        if fault is None:
            return None
        fault.times -= 1
        if fault.times <= 0:
            queue.remove(fault)
        return fault

    def _api(self, method: str, params: dict, token: str | None) -> dict:
        if not token:
            return {"ok": False, "error": "not_authed"}
        if self.tokens is not None and token not in self.tokens:
            return {"ok": False, "error": "invalid_auth"}
        action = _METHODS.get(method)
        by_token = _TOKEN_METHODS.get(method)
        if action is None and by_token is None:
            return {"ok": False, "error": "unknown_method"}
        try:
            with self._lock:
                return {"ok": True, **(action(self, params) if action else by_token(self, params, token))}
        except SlackError as error:
            return {"ok": False, "error": error.args[0]}

    def _next_ts(self) -> str:
        self._clock += 100
        ts = self._clock - 100
        return f"{ts // 1_000_000}.{ts % 1_000_000:06d}"

    def _find(self, channel: str | None, ts: str | None) -> list[dict]:
        versions = self._store.get(channel or "", {}).get(ts or "")
        if not versions:
            raise SlackError("message_not_found")
        return versions

    def _channel(self, params: dict, by_name: bool = False) -> str:
        """The channel id a call names. Only methods that Slack lets take a `#name` (posting)
        pass `by_name`; chat.update and the others answer `channel_not_found` to a name."""
        channel = params.get("channel")
        if by_name and self.channels is not None and isinstance(channel, str) and channel.startswith("#"):
            channel = next((cid for cid, name in self.channels.items() if name == channel[1:]), None)
        if not channel or (self.channels is not None and channel not in self.channels):
            raise SlackError("channel_not_found")
        return channel

    def _auth_test(self, p: dict) -> dict:
        return {
            "url": "https://example.slack.com/",
            "team": "Example",
            "user": "rollbot",
            "team_id": self.team_id,
            "user_id": self.bot_user_id,
            "bot_id": self.bot_id,
            "is_enterprise_install": False,
        }

    def _connections_open(self, p: dict, token: str | None) -> dict:
        """Slack issues Socket Mode URLs only to app-level tokens, never to bot tokens."""
        if not (token or "").startswith("xapp-"):
            raise SlackError("not_allowed_token_type")
        if self.socket_mode_url is None:
            raise SlackError("forbidden_team")
        return {"url": self.socket_mode_url}

    def _post_message(self, p: dict) -> dict:
        channel = self._channel(p, by_name=True)
        content = _content(p)
        msg = {
            "type": "message",
            "user": self.bot_user_id,
            "bot_id": self.bot_id,
            "team": self.team_id,
            "ts": self._next_ts(),
            **content,
        }
        parent_ts = p.get("thread_ts")
        if parent_ts:
            parent = self._store.get(channel, {}).get(parent_ts)
            msg["thread_ts"] = parent_ts
            msg["parent_user_id"] = parent[0]["user"] if parent else self.bot_user_id
        self._store.setdefault(channel, {})[msg["ts"]] = [copy.deepcopy(msg)]
        return {"channel": channel, "ts": msg["ts"], "message": msg}

    def _update(self, p: dict) -> dict:
        channel = self._channel(p)
        versions = self._find(channel, p.get("ts"))
        new = copy.deepcopy(versions[-1])
        # Slack's documented rule: fields left out keep their previous value; [] removes them.
        for key, value in _content(p, partial=True).items():
            if value in ([], None):
                new.pop(key, None)
            else:
                new[key] = value
        _content(new)  # the result must still have something to show
        new["edited"] = {"user": self.bot_user_id, "ts": self._next_ts()}
        versions.append(new)
        shown = {k: v for k, v in new.items() if k not in ("ts", "thread_ts", "parent_user_id")}
        return {"channel": channel, "ts": new["ts"], "text": new.get("text", ""), "message": shown}

    def _post_ephemeral(self, p: dict) -> dict:
        channel = self._channel(p)
        if not p.get("user"):
            raise SlackError("user_not_in_channel")
        entry = {"channel": channel, "user": p["user"], "message_ts": self._next_ts(), **_content(p)}
        if p.get("thread_ts"):
            entry["thread_ts"] = p["thread_ts"]
        self._ephemerals.append(entry)
        return {"message_ts": entry["message_ts"]}

    def _usergroup_users(self, p: dict) -> dict:
        group = p.get("usergroup")
        if group not in self.usergroups:
            raise SlackError("no_such_subteam")
        return {"users": list(self.usergroups[group])}

    def _conversation_info(self, p: dict) -> dict:
        channel = self._channel(p)
        name = (self.channels or {}).get(channel) or channel.lower()
        return {
            "channel": {
                "id": channel,
                "name": name,
                "name_normalized": name,
                "is_channel": True,
                "is_group": False,
                "is_im": False,
                "is_private": False,
                "is_archived": False,
                "is_member": True,
                "created": 1700000000,
            }
        }

    def _conversations_list(self, p: dict) -> dict:
        """Slack's documented paging: `limit` (at most 1000, fewer may come back), an opaque
        `cursor`, and `response_metadata.next_cursor` empty on the last page."""
        types = set(str(p.get("types") or "public_channel").split(","))
        skip_archived = str(p.get("exclude_archived", "false")).lower() in ("1", "true")
        listed = [
            (cid, name)
            for cid, name in sorted((self.channels or {}).items())
            if ("private_channel" if cid in self.private_channels else "public_channel") in types
            and not (skip_archived and cid in self.archived_channels)
        ]
        try:
            limit = min(int(p.get("limit") or 100), self.list_page_size, 1000)
            start = int(base64.b64decode(str(p.get("cursor") or "")).decode().removeprefix("offset:") or 0)
        except ValueError:
            raise SlackError("invalid_cursor") from None
        if limit < 1:
            raise SlackError("invalid_limit")
        page = listed[start : start + limit]
        more = start + limit < len(listed)
        cursor = base64.b64encode(f"offset:{start + limit}".encode()).decode() if more else ""
        return {
            "channels": [self._conversation(cid, name) for cid, name in page],
            "response_metadata": {"next_cursor": cursor},
        }

    def _conversation(self, cid: str, name: str) -> dict:
        """One channel object with every field Slack's spec requires of a channel."""
        private = cid in self.private_channels
        blank = {"value": "", "creator": "", "last_set": 0}
        return {
            "id": cid,
            "name": name,
            "name_normalized": name,
            "created": 1700000000,
            "creator": self.bot_user_id,
            "is_archived": cid in self.archived_channels,
            "is_channel": not private,
            "is_group": private,
            "is_im": False,
            "is_mpim": False,
            "is_private": private,
            "is_general": False,
            "is_shared": False,
            "is_org_shared": False,
            "is_ext_shared": False,
            "is_member": True,
            "num_members": 3,
            "topic": dict(blank),
            "purpose": dict(blank),
            "previous_names": [],
        }

    def _user_info(self, p: dict) -> dict:
        user = p.get("user")
        if not user or (self.users is not None and user not in self.users):
            raise SlackError("user_not_found")
        name = (self.users or {}).get(user) or user.lower()
        return {
            "user": {
                "id": user,
                "team_id": self.team_id,
                "name": name,
                "real_name": name,
                "deleted": False,
                "is_bot": False,
                "is_app_user": False,
                "updated": 1700000000,
                "tz": "Etc/UTC",
                "tz_offset": 0,
                "profile": {"real_name": name, "display_name": name},
            }
        }

    def _views_open(self, p: dict) -> dict:
        """A modal opened on a trigger. Slack refuses a trigger used twice (or older than 3 s:
        not modelled) and a view that is not a modal with a title and at most 100 blocks."""
        trigger = p.get("trigger_id")
        if not trigger:
            raise SlackError("invalid_trigger_id")
        if any(v.get("trigger_id") == trigger for v in self._views):
            raise SlackError("expired_trigger_id")
        view = self._view(p)
        view.update({"id": f"V{len(self._views) + 1:08d}", "trigger_id": trigger, "method": "views.open"})
        self._views.append(view)
        return {"view": self._view_answer(view)}

    def _views_update(self, p: dict) -> dict:
        known = next((v for v in self._views if v["id"] == p.get("view_id")), None)
        if known is None:
            raise SlackError("not_found")
        view = self._view(p)
        view.update({"id": known["id"], "method": "views.update"})
        self._views.append(view)
        return {"view": self._view_answer(view)}

    def _views_publish(self, p: dict) -> dict:
        """A user's App Home: a `home` view (not a modal) published for `user_id`."""
        if not p.get("user_id"):
            raise SlackError("invalid_arguments")
        raw = p.get("view")
        try:
            view = json.loads(raw) if isinstance(raw, str) else raw
        except ValueError:
            raise SlackError("invalid_arguments") from None
        if not isinstance(view, dict) or view.get("type") != "home" or not isinstance(view.get("blocks"), list):
            raise SlackError("invalid_arguments")
        if len(view["blocks"]) > 100:
            raise SlackError("invalid_arguments")
        published = {**copy.deepcopy(view), "id": f"V{len(self._views) + 1:08d}", "method": "views.publish"}
        published["user_id"] = p["user_id"]
        self._views.append(published)
        return {"view": self._view_answer(published)}

    @staticmethod
    def _view(p: dict) -> dict:
        view = p.get("view")
        try:
            view = json.loads(view) if isinstance(view, str) else view
        except ValueError:
            raise SlackError("invalid_arguments") from None
        blocks = view.get("blocks") if isinstance(view, dict) else None
        if not isinstance(view, dict) or view.get("type") != "modal" or not view.get("title"):
            raise SlackError("invalid_arguments")
        if not isinstance(blocks, list) or len(blocks) > 100:
            raise SlackError("invalid_arguments")
        return copy.deepcopy(view)

    def _view_answer(self, view: dict) -> dict:
        shown = {k: v for k, v in view.items() if k not in ("trigger_id", "method", "user_id")}
        return {**shown, "team_id": self.team_id, "app_id": "A0ROLLBOT", "bot_id": self.bot_id, "state": {"values": {}}}

    def _get_upload_url(self, p: dict) -> dict:
        """files v2, step 1: an upload URL on this fake (never through Prism) for `length` bytes."""
        filename, length = p.get("filename"), p.get("length")
        try:
            size = int(length)  # type: ignore[arg-type]
        except (TypeError, ValueError):
            raise SlackError("invalid_arguments") from None
        if not filename or size < 1:
            raise SlackError("invalid_arguments")
        file_id = f"F{len(self._files) + 1:08d}"
        self._files[file_id] = {"id": file_id, "name": filename, "length": size, "content": None}
        return {"upload_url": f"{self.url}upload/{file_id}", "file_id": file_id}

    def _upload(self, file_id: str, raw: bytes) -> tuple[int, dict]:
        """files v2, step 2: the bytes, POSTed to the upload URL; their length must be the one announced."""
        with self._lock:
            entry = self._files.get(file_id)
            if entry is None or len(raw) != entry["length"]:
                return 400, {"ok": False, "error": "invalid_upload"}
            entry["content"] = raw
        return 200, {"ok": True}

    def _complete_upload(self, p: dict) -> dict:
        """files v2, step 3: share uploaded files in a channel (and thread)."""
        try:
            listed = json.loads(p["files"]) if isinstance(p.get("files"), str) else p.get("files")
        except ValueError:
            raise SlackError("invalid_arguments") from None
        if not isinstance(listed, list) or not listed:
            raise SlackError("invalid_arguments")
        channel = self._channel({"channel": p.get("channel_id")}) if p.get("channel_id") else None
        done = []
        for item in listed:
            entry = self._files.get(str(item.get("id")))
            if entry is None or entry["content"] is None:
                raise SlackError("file_not_found")
            entry.update(
                {"title": item.get("title") or entry["name"], "channel": channel, "thread_ts": p.get("thread_ts")}
            )
            if p.get("initial_comment"):
                entry["initial_comment"] = p["initial_comment"]
            done.append({"id": entry["id"], "title": entry["title"], "name": entry["name"], "size": entry["length"]})
        return {"files": done}

    def _permalink(self, p: dict) -> dict:
        channel = self._channel(p)
        msg = self._find(channel, p.get("message_ts"))[-1]
        link = f"https://example.slack.com/archives/{channel}/p{msg['ts'].replace('.', '')}"
        if msg.get("thread_ts", msg["ts"]) != msg["ts"]:
            link += f"?thread_ts={msg['thread_ts']}&cid={channel}"
        return {"channel": channel, "permalink": link}


_METHODS = {
    "auth.test": FakeSlack._auth_test,
    "chat.postMessage": FakeSlack._post_message,
    "chat.update": FakeSlack._update,
    "chat.postEphemeral": FakeSlack._post_ephemeral,
    "usergroups.users.list": FakeSlack._usergroup_users,
    "conversations.info": FakeSlack._conversation_info,
    "conversations.list": FakeSlack._conversations_list,
    "users.info": FakeSlack._user_info,
    "chat.getPermalink": FakeSlack._permalink,
    "views.open": FakeSlack._views_open,
    "views.update": FakeSlack._views_update,
    "views.publish": FakeSlack._views_publish,
    "files.getUploadURLExternal": FakeSlack._get_upload_url,
    "files.completeUploadExternal": FakeSlack._complete_upload,
}
_TOKEN_METHODS = {  # methods whose answer depends on the kind of token that called them
    "apps.connections.open": FakeSlack._connections_open,
}


class _Handler(BaseHTTPRequestHandler):
    """POST and GET (slack_sdk's WebClient always POSTs; its async client may GET, as Slack allows)."""

    protocol_version = "HTTP/1.1"
    fake: FakeSlack

    def do_POST(self) -> None:
        self.fake._handle(self)

    do_GET = do_POST

    def log_message(self, format: str, *args: Any) -> None:
        pass  # keep pytest output clean


def _parse(content_type: str, raw: bytes, query: str) -> dict[str, Any]:
    """Query string plus body, the body either JSON or form-encoded (Slack takes both)."""
    params: dict[str, Any] = dict(parse_qsl(query, keep_blank_values=True))
    if not raw:
        return params
    if "json" in content_type.lower():
        try:
            body = json.loads(raw)
        except ValueError:
            raise ValueError("invalid_json") from None
        if not isinstance(body, dict):
            raise ValueError("json_not_object")
        params.update({k: v for k, v in body.items() if v is not None})
    else:
        try:
            params.update(parse_qsl(raw.decode("utf-8"), keep_blank_values=True, strict_parsing=True))
        except (UnicodeDecodeError, ValueError):
            raise ValueError("invalid_form_data") from None
    return params


def _content(p: dict, partial: bool = False) -> dict:
    """text / blocks / attachments of a message, blocks and attachments decoded from JSON text
    when they came in a form body, checked against Slack's limits."""
    out: dict[str, Any] = {"text": str(p["text"])[:MAX_TEXT]} if "text" in p else {}
    for key, error in (("blocks", "invalid_blocks_format"), ("attachments", "invalid_attachments")):
        if key in p:
            value = p[key]
            try:
                value = (json.loads(value) if value.strip() else []) if isinstance(value, str) else value
            except ValueError:
                value = None
            if not isinstance(value, list) or not all(isinstance(item, dict) for item in value):
                raise SlackError(error)
            out[key] = value
    blocks = out.get("blocks") or []
    sections = [b.get("text") for b in blocks if b.get("type") == "section"]
    if len(blocks) > MAX_BLOCKS or any(
        isinstance(t, dict) and len(str(t.get("text", ""))) > MAX_SECTION_TEXT for t in sections
    ):
        raise SlackError("invalid_blocks")
    for i, attachment in enumerate(out.get("attachments") or [], 1):
        attachment.setdefault("id", i)  # Slack numbers attachments in what it returns
    if not partial and not (out.get("text") or blocks or out.get("attachments")):
        raise SlackError("no_text")
    return out
