"""Responder a la mesa de ayuda: the officer's answer on one of their tickets.

Opened by the "Responder" button on a help-desk message, or by "Corregir" on an
observation that asks for an explanation rather than a part of the form ("otro"): then
the answer is the correction and the ticket returns to "En atención".
"""

from __future__ import annotations

from conversations.events import Choice, Inbound, Outbound, rows
from conversations.flow import Again, Ctx, Done, Flow, Outcome, Step
from conversations.notices import typed_message


async def ask_text(ctx: Ctx) -> list[Outbound]:
    data = {"number": ctx.data["number"], "observed": ctx.data.get("observed", False)}
    return [Outbound("respuesta.pregunta", data, rows(Choice("menu", "btn.menu")))]


async def answer_text(ctx: Ctx, event: Inbound) -> Outcome:
    text = typed_message(event)
    if isinstance(text, Again):
        return text
    number = ctx.data["number"]
    resumed = await ctx.services.officer_reply(number, text)
    if resumed is None:  # the ticket closed meanwhile
        return Done([Outbound("respuesta.no_disponible", {"number": number})])
    return Done([Outbound("respuesta.enviada", {"number": number, "resumed": resumed})])


FLOW = Flow(
    name="respuesta",
    steps=(Step("texto", ask_text, answer_text, counted=False),),
    progress=False,
)
