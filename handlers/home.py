"""rollbot's App Home: what on-call looks at first, drawn when someone opens the tab.

Each target's running version and health, its newest snapshot and that snapshot's age, a run in
progress, and the last runs: the same facts as `/rollback status` and `/rollback history`, kept
where people find them without typing. Opening the tab is an event; Bolt acknowledges it at
once, and the facts (which ask Docker and /health) are gathered after, on the core's executor.
"""

from __future__ import annotations

from typing import Any

from slack_bolt import App, BoltContext
from slack_sdk.models.blocks import ContextBlock, DividerBlock, HeaderBlock, MarkdownTextObject
from slack_sdk.models.views import View

from bot.core.outcomes import TargetStatus
from handlers.blocks import history_message, status_command_message
from handlers.services import Services
from storage import RunView

LAST_RUNS = 10


def register(app: App) -> None:
    app.event("app_home_opened")(on_home_opened)


def on_home_opened(event: dict[str, Any], context: BoltContext) -> None:
    services: Services = context["services"]
    user = str(event.get("user") or "")
    if user and event.get("tab") in ("home", ""):
        services.rollbot.background(_draw, services, user)


def _draw(services: Services, user: str) -> None:
    view = home_view(services.rollbot.status(), services.rollbot.history(limit=LAST_RUNS))
    services.outbox.send(lambda: services.poster.publish_home(user, view), lane=f"user:{user}")


def home_view(statuses: list[TargetStatus], runs: list[RunView]) -> dict[str, Any]:
    """The Home tab: targets first, then the last runs, each drawn as the commands draw them."""
    blocks: list[Any] = [HeaderBlock(text="Targets")]
    blocks += status_command_message(statuses).blocks[:40]
    blocks += [DividerBlock(), HeaderBlock(text=f"Last {LAST_RUNS} runs")]
    blocks += history_message(runs).blocks
    blocks.append(
        ContextBlock(
            elements=[MarkdownTextObject(text="`/rollback` opens the rollback form; `/rollback help` lists the rest")]
        )
    )
    return View(type="home", blocks=blocks).to_dict()
