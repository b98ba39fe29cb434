"""/privacidad: the notice again, with the person's current decision and how to change it."""

from __future__ import annotations

from conversations.consent import answer_notice, notice
from conversations.events import Choice, Inbound, Outbound, rows
from conversations.flow import Ctx, Done, Flow, Outcome, Step


async def ask_privacy(ctx: Ctx) -> list[Outbound]:
    if ctx.person.consent is True:
        return [
            Outbound(
                "privacy.accepted",
                {"version": ctx.services.notice_version},
                rows(Choice("menu", "btn.menu")),
            )
        ]
    return notice(ctx, first_contact=False)


async def answer_privacy(ctx: Ctx, event: Inbound) -> Outcome:
    if ctx.person.consent is True:
        return Done()
    return await answer_notice(ctx, event)


FLOW = Flow(
    name="privacidad",
    steps=(Step("notice", ask_privacy, answer_privacy, counted=False),),
    command="privacidad",
    needs_consent=False,
    progress=False,
)
