"""Who is in a Slack usergroup, for `requesters`/`approvers` entries that are groups (S…)."""

from __future__ import annotations

import logging
import threading
import time

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

log = logging.getLogger(__name__)
CACHE_SECONDS = 60.0


class SlackDirectory:
    """Expands usergroup ids with usergroups.users.list, cached briefly: membership changes
    during an incident (someone joins the on-call group) are seen within a minute."""

    def __init__(self, client: WebClient, ttl: float = CACHE_SECONDS) -> None:
        self._client = client
        self._ttl = ttl
        self._cache: dict[str, tuple[float, set[str]]] = {}
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
            users = set(self._client.usergroups_users_list(usergroup=entry).get("users") or [])
        except SlackApiError as error:
            log.warning("cannot list the members of usergroup %s: %s", entry, error.response.get("error"))
            return set()
        with self._lock:
            self._cache[entry] = (now + self._ttl, users)
        return users
