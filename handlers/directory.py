"""Who is in a Slack usergroup, and which channel an `incident_channel` names.

Usergroups: `requesters`/`approvers` entries that are groups (S…) are expanded to their members.
Channels: the YAML may name the incident channel by id (`C…`/`G…`), by `#name` or `name`, or by
the `<#C…|name>` form Slack shows when a channel is pasted. Slack's chat.update only takes an id,
so a name is resolved once with conversations.list and the id is what every call uses.
"""

from __future__ import annotations

import logging
import re
import threading
import time
from dataclasses import dataclass

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

from handlers.poster import SlackPoster, poster_for

log = logging.getLogger(__name__)
CACHE_SECONDS = 60.0
CHANNEL_ID = re.compile(r"^[CG][A-Z0-9]{6,}$")  # Slack's ids; names are always lower case
PASTED = re.compile(r"^<#([CG][A-Z0-9]{6,})(\|[^>]*)?>$")


@dataclass(frozen=True)
class ChannelLookup:
    """What an `incident_channel` entry resolved to: the id, or why it did not resolve."""

    entry: str
    id: str | None
    problem: str | None = None


def channel_id_in(entry: str) -> str | None:
    """The id written in an entry, with no call to Slack: `C0123ABCD` or `<#C0123ABCD|name>`."""
    text = entry.strip()
    pasted = PASTED.match(text)
    if pasted:
        return pasted.group(1)
    return text if CHANNEL_ID.match(text) else None


class SlackDirectory:
    """Usergroup members are cached briefly: membership changes during an incident (someone
    joins the on-call group) are seen within a minute. Channel names are cached once found (a
    channel's id never changes); a name not found is looked up again after the same minute, so
    a channel created or a bot invited mid-incident is found without a restart."""

    def __init__(self, slack: SlackPoster | WebClient, ttl: float = CACHE_SECONDS) -> None:
        self._slack = poster_for(slack)
        self._ttl = ttl
        self._cache: dict[str, tuple[float, set[str]]] = {}
        self._channels: dict[str, str] = {}  # name -> id, from conversations.list
        self._listed_at: float | None = None
        self._lock = threading.Lock()

    def members_of(self, entry: str) -> set[str]:
        if not entry.startswith("S"):
            return set()
        now = time.monotonic()
        with self._lock:
            cached = self._cache.get(entry)
            if cached and cached[0] > now:
                return cached[1]
        try:
            users = self._slack.usergroup_members(entry)
        except SlackApiError as error:
            log.warning("cannot list the members of usergroup %s: %s", entry, error.response.get("error"))
            return set()
        with self._lock:
            self._cache[entry] = (now + self._ttl, users)
        return users

    def channel(self, entry: str) -> ChannelLookup:
        """The id of the channel an `incident_channel` entry names. Never raises: a Slack error
        is a `problem` the caller tells a person about."""
        written = channel_id_in(entry)
        if written:
            return ChannelLookup(entry, written)
        name = entry.strip().lstrip("#").strip().lower()
        if not name:
            return ChannelLookup(entry, None, "it is empty")
        with self._lock:
            known = self._channels.get(name)
            fresh = self._listed_at is not None and time.monotonic() - self._listed_at < self._ttl
        if known or fresh:
            return ChannelLookup(entry, known, None if known else self._not_found(name))
        try:
            channels = self._slack.visible_channels()
        except SlackApiError as error:
            problem = str(error.response.get("error") or "an error")
            log.warning("cannot list Slack channels to find #%s: %s", name, problem)
            return ChannelLookup(
                entry,
                None,
                f"Slack answered `{problem}` to conversations.list"
                + (" (the app needs the channels:read and groups:read scopes)" if problem == "missing_scope" else ""),
            )
        with self._lock:
            self._channels.update(channels)
            self._listed_at = time.monotonic()
            known = self._channels.get(name)
        return ChannelLookup(entry, known, None if known else self._not_found(name))

    @staticmethod
    def _not_found(name: str) -> str:
        return (
            f"no channel #{name} is visible to rollbot (a private channel must have rollbot invited; "
            "an archived one does not count)"
        )
