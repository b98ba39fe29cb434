"""/mis_datos and /borrar_mis_datos: what is stored about the person, and erasing it.

Erasure removes consent records, verification codes, drafts and conversation state, and
anonymises the chat identity; tickets already submitted stay as administrative records
(the message says so).
"""

from __future__ import annotations

from conversations.events import Choice, Inbound, Kind, Outbound, rows
from conversations.flow import Again, Ctx, Done, Flow, ForgetMe, Outcome, Step
from conversations.names import FlowName

ERASE, KEEP = "erase", "keep"


async def ask_my_data(ctx: Ctx) -> list[Outbound]:
    return [Outbound("mis_datos.summary", await ctx.services.my_data())]


async def ask_erase(ctx: Ctx) -> list[Outbound]:
    buttons = rows(Choice(ERASE, "btn.erase_yes"), Choice(KEEP, "btn.erase_no"))
    return [Outbound("mis_datos.confirm_erase", await ctx.services.my_data(), buttons)]


async def answer_erase(ctx: Ctx, event: Inbound) -> Outcome:
    if event.kind is Kind.BUTTON and event.text == ERASE:
        ctx.person.consent = None
        return Done(messages=[Outbound("mis_datos.erased")], effects=[ForgetMe()], menu=False)
    if event.kind is Kind.BUTTON and event.text == KEEP:
        return Done(messages=[Outbound("mis_datos.kept")])
    return Again("errors.use_buttons")


FLOW = Flow(
    name=FlowName.MY_DATA,
    steps=(Step("ver", ask_my_data, counted=False),),
    command="mis_datos",
    needs_consent=False,
    progress=False,
)

ERASE_FLOW = Flow(
    name=FlowName.ERASE,
    steps=(Step("confirmar", ask_erase, answer_erase, counted=False),),
    command="borrar_mis_datos",
    needs_consent=False,
    progress=False,
)
