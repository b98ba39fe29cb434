"""Requisitos y pasos: the onboarding guide, one card per message.

Cards carry Siguiente / Anterior / Menú and are edited in place when a button is tapped.
The last card asks whether the resolution is ready; "Sí, empezar solicitud" appears only
when the access-request flow exists.
"""

from __future__ import annotations

from conversations.events import Choice, Inbound, Kind, Outbound, rows
from conversations.flow import Again, AskFn, Back, Ctx, Done, Flow, Next, Outcome, Start, Step
from conversations.names import MENU_CHOICE, FlowName

NEXT, PREVIOUS = "next", "prev"
READY, NOT_YET = "ready", "not_yet"

CARDS = ("quien", "resolucion", "formato", "envio", "plazo", "accesos")


def card(name: str, first: bool) -> AskFn:
    async def ask(ctx: Ctx) -> list[Outbound]:
        buttons = [Choice(NEXT, "btn.next")]
        if not first:
            buttons.insert(0, Choice(PREVIOUS, "btn.previous"))
        layout = (tuple(buttons), (Choice(MENU_CHOICE, "btn.menu"),))
        data = {"sections": [s.name for s in ctx.services.sections]}
        return [Outbound(f"requisitos.{name}", data, layout, ctx.progress)]

    return ask


async def answer_card(ctx: Ctx, event: Inbound) -> Outcome:
    if event.kind is Kind.BUTTON and event.text == PREVIOUS:
        return Back()
    if event.kind is Kind.BUTTON and event.text == NEXT:
        return Next()
    return Again("requisitos.use_buttons")


async def ask_ready(ctx: Ctx) -> list[Outbound]:
    buttons = [Choice(NOT_YET, "btn.not_yet")]
    if FlowName.ACCESS_REQUEST in ctx.flows:
        buttons.insert(0, Choice(READY, "btn.start_request"))
    layout = (*rows(*buttons), (Choice(PREVIOUS, "btn.previous"),))
    return [Outbound("requisitos.ready", {}, layout, ctx.progress)]


async def answer_ready(ctx: Ctx, event: Inbound) -> Outcome:
    if event.kind is Kind.BUTTON:
        if event.text == READY and FlowName.ACCESS_REQUEST in ctx.flows:
            return Start(FlowName.ACCESS_REQUEST)
        if event.text == NOT_YET:
            return Done(messages=[Outbound("requisitos.not_yet")])
        if event.text == PREVIOUS:
            return Back()
    return Again("requisitos.use_buttons")


FLOW = Flow(
    name=FlowName.REQUIREMENTS,
    steps=(
        *(
            Step(name, card(name, first=i == 0), answer_card, edits=True)
            for i, name in enumerate(CARDS)
        ),
        Step("lista", ask_ready, answer_ready),
    ),
    menu_label="menu.requisitos",
    command="requisitos",
    needs_consent=False,
)
