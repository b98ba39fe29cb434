"""/privacidad: the whole notice, the person's decision, and how to change it.

Someone who has not accepted gets the notice's question (accepting opens the menu); someone
who has can withdraw their consent, after being told what that changes (the unsent drafts go,
the tickets already sent go on as administrative records, erasure is /borrar_mis_datos).
"""

from __future__ import annotations

from conversations.consent import answer_notice, full_notice, question
from conversations.events import Choice, Inbound, Kind, Outbound, rows
from conversations.flow import Again, Ctx, Done, Flow, Next, Outcome, Step, WithdrawConsent
from conversations.names import MENU_CHOICE, FlowName

WITHDRAW, YES, NO = "withdraw", "yes", "no"


async def ask_privacy(ctx: Ctx) -> list[Outbound]:
    if ctx.person.consent is True:
        buttons = rows(Choice(WITHDRAW, "btn.withdraw"), Choice(MENU_CHOICE, "btn.menu"))
        status = Outbound("privacy.accepted", {"version": ctx.services.notice_version}, buttons)
        return [full_notice(ctx), status]
    return [full_notice(ctx), question(ctx)]


async def answer_privacy(ctx: Ctx, event: Inbound) -> Outcome:
    if ctx.person.consent is True:
        if event.kind is Kind.BUTTON and event.text == WITHDRAW:
            return Next("retirar")
        return Done()
    return await answer_notice(ctx, event)


async def ask_withdraw(ctx: Ctx) -> list[Outbound]:
    buttons = rows(Choice(YES, "btn.withdraw_yes"), Choice(NO, "btn.withdraw_no"), per_row=2)
    return [Outbound("privacy.withdraw_confirm", {}, buttons)]


async def answer_withdraw(ctx: Ctx, event: Inbound) -> Outcome:
    if event.kind is Kind.BUTTON and event.text == YES:
        ctx.person.consent = False
        effect = WithdrawConsent(ctx.services.notice_version, accepted=False)
        return Done(messages=[Outbound("privacy.withdrawn")], effects=[effect])
    if event.kind is Kind.BUTTON and event.text == NO:
        return Done(messages=[Outbound("privacy.kept")])
    return Again("errors.use_buttons")


FLOW = Flow(
    name=FlowName.PRIVACY,
    steps=(
        Step("notice", ask_privacy, answer_privacy, counted=False),
        Step("retirar", ask_withdraw, answer_withdraw, counted=False),
    ),
    command="privacidad",
    needs_consent=False,
    progress=False,
)
