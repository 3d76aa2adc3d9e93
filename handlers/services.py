"""What the listeners need, put into Bolt's `context` by one middleware (no globals)."""

from __future__ import annotations

import logging
import secrets
from dataclasses import dataclass

from slack_sdk import WebClient

from bot.core import Rollbot
from bot.errors import RollbotError
from handlers.directory import SlackDirectory
from handlers.outbox import Outbox

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Services:
    rollbot: Rollbot
    client: WebClient
    outbox: Outbox
    directory: SlackDirectory

    def tell(self, channel: str, user: str, text: str) -> None:
        """An ephemeral message: refusals and errors go only to the person who clicked or typed."""
        self.outbox.send(lambda: self.client.chat_postEphemeral(channel=channel, user=user, text=text))

    def guarded(self, channel: str, user: str, work, *args, runs: bool = False) -> None:  # type: ignore[no-untyped-def]
        """Run `work` after the ack; a failure reaches the person as one line, never a traceback."""

        def run() -> None:
            try:
                work(self, *args)
            except RollbotError as error:
                self.tell(channel, user, f":no_entry: {error}")
            except Exception:  # noqa: BLE001 - the one error sink for work after the ack
                error_id = secrets.token_hex(4)
                log.exception("unexpected error %s", error_id)
                self.tell(channel, user, f":warning: rollbot hit an unexpected error (id `{error_id}`); "
                                         "it is logged under that id.")

        self.rollbot.background(run, runs=runs)
