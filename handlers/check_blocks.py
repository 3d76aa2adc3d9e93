"""Block Kit for a `/rollback check` verdict: the evidence block and, when it recommends a
rollback, the button that plans one to the previous good version. Pure functions."""

from __future__ import annotations

from slack_sdk.models.blocks import ActionsBlock, Block, ButtonElement, ContextBlock, MarkdownTextObject

from bot.planning.judgement import Call, Judgement
from handlers.blocks import Message, esc, evidence_text, section
from handlers.ids import BlockId, CheckActionId


def check_message(target: str, judgement: Judgement, asked_by: str) -> Message:
    blocks: list[Block] = [section(f"*Should {esc(target)} be rolled back?*\n" + evidence_text(judgement))]
    if judgement.call is not Call.DONT and judgement.previous_good:
        blocks.append(
            ActionsBlock(
                block_id=BlockId.CHECK_ACTIONS,
                elements=[
                    ButtonElement(
                        text=f"Plan the rollback to {judgement.previous_good}",
                        action_id=CheckActionId.PLAN,
                        value=f"{target} {judgement.previous_good}",
                        style="danger" if judgement.call is Call.ROLL_BACK else None,
                    )
                ],
            )
        )
    blocks.append(ContextBlock(elements=[MarkdownTextObject(text=f"checked for <@{asked_by}>")]))
    return Message(judgement.headline[:3000], [block.to_dict() for block in blocks])
