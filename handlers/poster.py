"""The one module that calls Slack's Web API, and the one that knows how Slack answers.

Listeners, the progress sink, recovery and the directory say what they want in rollbot's terms
(post this message there, edit that one, who is in this group); the poster turns it into the
Web API call. Anything not given (a thread, blocks) is left out of the request rather than sent
empty, as slack_sdk does with None. Calls raise `SlackApiError` as slack_sdk does: the outbox
retries what `retryable` allows, waiting `retry_after` when Slack said how long.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

from handlers.blocks import Message

# What is worth another try: Slack's own transient errors (besides 429 and 5xx).
RETRYABLE_ERRORS = frozenset({"ratelimited", "service_unavailable", "internal_error", "fatal_error", "request_timeout"})
LIST_LIMIT = 1000  # conversations.list's own maximum page
LISTED_TYPES = "public_channel,private_channel"


@dataclass(frozen=True)
class Posted:
    """Where a message landed: Slack answers with the channel's id, whatever name was asked."""

    channel: str
    ts: str


class SlackPoster:
    """Typed calls to the Web API methods rollbot uses, over an injected `WebClient`."""

    def __init__(self, client: WebClient) -> None:
        self._client = client

    def post(self, channel: str, message: Message | str, thread_ts: str | None = None) -> Posted:
        """A new message (chat.postMessage); a plain string is sent as text with no blocks."""
        text, blocks = (message, None) if isinstance(message, str) else (message.text, message.blocks)
        answer = self._client.chat_postMessage(channel=channel, text=text, blocks=blocks, thread_ts=thread_ts)
        return Posted(str(answer.get("channel") or channel), str(answer["ts"]))

    def update(self, channel: str, ts: str, message: Message) -> None:
        """Replace a message in place (chat.update, which takes only a channel id)."""
        self._client.chat_update(channel=channel, ts=ts, text=message.text, blocks=message.blocks)

    def upload(self, channel: str, thread_ts: str | None, filename: str, content: str | bytes, title: str) -> None:
        """A file into a channel, in a thread when `thread_ts` is given (files_upload_v2: an upload
        URL from files.getUploadURLExternal, the bytes to it, then files.completeUploadExternal)."""
        self._client.files_upload_v2(
            channel=channel, thread_ts=thread_ts, filename=filename, content=content, title=title
        )

    def ephemeral(self, channel: str, user: str, text: str) -> None:
        """A message only `user` sees (chat.postEphemeral)."""
        self._client.chat_postEphemeral(channel=channel, user=user, text=text)

    def permalink(self, channel: str, ts: str) -> str | None:
        """A message's link (chat.getPermalink): Slack builds it; the workspace's domain is not known otherwise."""
        link = self._client.chat_getPermalink(channel=channel, message_ts=ts).get("permalink")
        return link if isinstance(link, str) else None

    def open_view(self, trigger_id: str, view: dict[str, Any]) -> str:
        """Open a modal on a command's trigger (views.open); the view's id."""
        answer = self._client.views_open(trigger_id=trigger_id, view=view)
        return str((answer.get("view") or {}).get("id") or "")

    def publish_home(self, user: str, view: dict[str, Any]) -> None:
        """Draw a person's App Home tab (views.publish)."""
        self._client.views_publish(user_id=user, view=view)

    def usergroup_members(self, usergroup: str) -> set[str]:
        """The user ids in a usergroup (usergroups.users.list)."""
        return set(self._client.usergroups_users_list(usergroup=usergroup).get("users") or [])

    def visible_channels(self) -> dict[str, str]:
        """Name to id of every public channel and every private one the bot is in, unarchived,
        read page by page (conversations.list)."""
        found: dict[str, str] = {}
        cursor: str | None = None
        while True:
            page = self._client.conversations_list(
                types=LISTED_TYPES, exclude_archived=True, limit=LIST_LIMIT, cursor=cursor
            )
            for channel in page.get("channels") or []:
                if channel.get("name") and channel.get("id"):
                    found[str(channel["name"])] = str(channel["id"])
            cursor = (page.get("response_metadata") or {}).get("next_cursor") or None
            if not cursor:
                return found


def poster_for(slack: SlackPoster | WebClient) -> SlackPoster:
    """A poster over a bare client too, for callers that hold only a `WebClient`."""
    return slack if isinstance(slack, SlackPoster) else SlackPoster(slack)


def retryable(error: BaseException) -> bool:
    """Rate limits, Slack's 5xx and transient errors, and the network failing: worth a retry.
    Anything else (invalid blocks, a missing scope) fails the same way every time."""
    if isinstance(error, SlackApiError):
        status = getattr(error.response, "status_code", 200)
        return bool(status == 429 or status >= 500 or error.response.get("error") in RETRYABLE_ERRORS)
    return isinstance(error, (OSError, TimeoutError)) or type(error).__name__ in {"URLError", "RemoteDisconnected"}


def retry_after(error: BaseException | None) -> float | None:
    """The seconds Slack's `Retry-After` asks to wait, when it sent a readable one."""
    if not isinstance(error, SlackApiError):
        return None
    header = error.response.headers.get("Retry-After") or error.response.headers.get("retry-after")
    if not header:
        return None
    value = header[0] if isinstance(header, list) else header
    try:
        return float(value)
    except ValueError:
        return None
