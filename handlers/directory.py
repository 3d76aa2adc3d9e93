"""Who is in a Slack usergroup, and which channel an `incident_channel` names.

Usergroups: `requesters`/`approvers` entries that are groups (S…) are expanded to their members
from a cache that a background thread refreshes (usergroups.users.list): an ack must never wait
on Slack, and a Slack that is slow or down must never turn into "you are not a requester". A
refresh that fails keeps the last good list and is logged; a group never read at all is
`MembershipUnknown`, which people are told as such. `rollbot serve` reads every group once
before it serves (a cold start).
Channels: the YAML may name the incident channel by id (`C…`/`G…`), by `#name` or `name`, or by
the `<#C…|name>` form Slack shows when a channel is pasted. Slack's chat.update only takes an id,
so a name is resolved once with conversations.list and the id is what every call uses.
"""

from __future__ import annotations

import logging
import re
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

from bot.errors import OutsideSystemError
from handlers.poster import SlackPoster, poster_for

log = logging.getLogger(__name__)
CACHE_SECONDS = 60.0
GROUP_REFRESH_SECONDS = 60.0


class MembershipUnknown(OutsideSystemError):
    """A user group's members have never been read from Slack: neither yes nor no is known."""


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
    """Usergroup members come from a cache that `refresh_groups` fills and a background thread
    (`keep_refreshing`) renews every minute: membership changes during an incident (someone
    joins the on-call group) are seen within a minute, and no caller ever waits on Slack for
    them. Channel names are cached once found (a channel's id never changes); a name not found
    is looked up again after a minute, so a channel created or a bot invited mid-incident is
    found without a restart."""

    def __init__(self, slack: SlackPoster | WebClient, ttl: float = CACHE_SECONDS) -> None:
        self._slack = poster_for(slack)
        self._ttl = ttl
        self._groups: dict[str, set[str]] = {}  # the last good list of each group read
        self._failures: dict[str, str] = {}  # why the last refresh of a group failed
        self._channels: dict[str, str] = {}  # name -> id, from conversations.list
        self._listed_at: float | None = None
        self._lock = threading.Lock()

    def members_of(self, entry: str) -> set[str]:
        """The members of a usergroup as last read; never calls Slack. An entry that is not a
        group has none; a group never read raises `MembershipUnknown`."""
        if not entry.startswith("S"):
            return set()
        with self._lock:
            known = self._groups.get(entry)
            failure = self._failures.get(entry)
        if known is not None:
            return known
        raise MembershipUnknown(
            f"rollbot has not been able to read the members of user group {entry} from Slack yet"
            + (f" (Slack answered `{failure}`)" if failure else "")
            + "; try again in a minute, or ask someone listed by name"
        )

    def refresh_groups(self, groups: Iterable[str]) -> None:
        """Read each group's members now. A failure keeps the last good list and is logged."""
        for group in sorted({entry for entry in groups if entry.startswith("S")}):
            try:
                users = self._slack.usergroup_members(group)
            except SlackApiError as error:
                self._failed(group, str(error.response.get("error") or "an error"))
                continue
            except Exception as error:  # noqa: BLE001 - the network failing must not stop the refresher
                self._failed(group, type(error).__name__)
                continue
            with self._lock:
                self._groups[group] = users
                self._failures.pop(group, None)

    def _failed(self, group: str, problem: str) -> None:
        with self._lock:
            self._failures[group] = problem
            kept = group in self._groups
        log.warning(
            "cannot refresh the members of usergroup %s (%s); %s",
            group,
            problem,
            "keeping the last list read" if kept else "it has never been read",
        )

    def keep_refreshing(self, groups: Iterable[str], every: float = GROUP_REFRESH_SECONDS) -> threading.Event:
        """Refresh `groups` every `every` seconds on a daemon thread until the event is set."""
        wanted, stop = tuple(groups), threading.Event()

        def loop() -> None:
            while not stop.wait(every):
                self.refresh_groups(wanted)

        threading.Thread(target=loop, name="slack-usergroups", daemon=True).start()
        return stop

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
