"""First contact: the data-protection notice (Ley 29733) and an explicit "Acepto".

The essentials and the question come in one message, with «Acepto», «No acepto» and
«Aviso completo» (the whole text, as /privacidad shows it, then the question again).
Without consent the person can still read the requirements; flows that collect personal
data are refused by the engine until they accept.
"""

from __future__ import annotations

from conversations.events import Choice, Inbound, Kind, Outbound
from conversations.flow import Again, Ctx, Done, Flow, Outcome, RecordConsent, Start, Stay, Step
from conversations.names import FlowName

ACCEPT = "accept"
DECLINE = "decline"
FULL = "full"


def buttons() -> tuple[tuple[Choice, ...], ...]:
    return (
        (Choice(ACCEPT, "btn.accept"), Choice(DECLINE, "btn.decline")),
        (Choice(FULL, "btn.full_notice"),),
    )


def question(ctx: Ctx) -> Outbound:
    """ "¿Aceptas?" alone, after the whole notice."""
    return Outbound("consent.ask", {"version": ctx.services.notice_version}, buttons())


def notice(ctx: Ctx, *, first_contact: bool) -> list[Outbound]:
    """The essentials and the question in one message."""
    messages = [Outbound("consent.welcome")] if first_contact else []
    version = {"version": ctx.services.notice_version}
    messages.append(Outbound("consent.notice", version, buttons()))
    return messages


def full_notice(ctx: Ctx) -> Outbound:
    return Outbound("privacy.full", {"version": ctx.services.notice_version})


async def ask_notice(ctx: Ctx) -> list[Outbound]:
    return notice(ctx, first_contact=ctx.person.consent is None)


async def answer_notice(ctx: Ctx, event: Inbound) -> Outcome:
    if event.kind is Kind.BUTTON and event.text == FULL:
        return Stay([full_notice(ctx), question(ctx)])
    if event.kind is Kind.BUTTON and event.text in (ACCEPT, DECLINE):
        accepted = event.text == ACCEPT
        ctx.person.consent = accepted
        messages = [Outbound("consent.accepted" if accepted else "consent.declined")]
        effects = [RecordConsent(ctx.services.notice_version, accepted)]
        then = ctx.data.get("then")
        if accepted and then:  # what the person asked for before the notice
            return Start(then, messages, effects)
        return Done(messages=messages, effects=effects)
    return Again("consent.choose")


FLOW = Flow(
    name=FlowName.CONSENT,
    steps=(Step("notice", ask_notice, answer_notice, counted=False),),
    needs_consent=False,
    progress=False,
)
