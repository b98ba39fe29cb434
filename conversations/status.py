"""Estado de mis trámites: the officer's own tickets, newest first, and each one's detail.

A ticket number typed anywhere ("¿cómo va PTE-2026-000123?") opens its detail; it is shown
only to its owner or to staff, and anyone else gets the same answer as for a number that
does not exist.
"""

from __future__ import annotations

import re

from conversations import notices
from conversations.events import Choice, Inbound, Kind, Outbound, rows
from conversations.flow import Again, Ctx, Flow, Jump, Next, Outcome, Step
from conversations.names import MENU_CHOICE, REPLY_TEXT, TICKET_PREFIX, FlowName, menu_entry

TICKET = re.compile(r"\bPTE\s*-?\s*(\d{4})\s*-?\s*(\d{1,6})\b", re.IGNORECASE)
BACK = "back"


def find_number(text: str) -> str | None:
    """``"estado pte 2026-123"`` → ``"PTE-2026-000123"``."""
    found = TICKET.search(text)
    if found is None:
        return None
    return f"PTE-{found.group(1)}-{int(found.group(2)):06d}"


async def ask_list(ctx: Ctx) -> list[Outbound]:
    tickets = await ctx.services.my_tickets()
    if not tickets:
        buttons = rows(
            Choice(menu_entry(FlowName.ACCESS_REQUEST), "btn.start_request_short"),
            Choice(MENU_CHOICE, "btn.menu"),
        )
        return [Outbound("estado.none", {}, buttons)]
    buttons = rows(
        *[Choice(TICKET_PREFIX + t["number"], "btn.ticket", t) for t in tickets],
        Choice(MENU_CHOICE, "btn.menu"),
    )
    return [Outbound("estado.list", {"count": len(tickets)}, buttons)]


async def answer_list(ctx: Ctx, event: Inbound) -> Outcome:
    if event.kind is Kind.BUTTON and event.text.startswith(TICKET_PREFIX):
        ctx.data["number"] = event.text[len(TICKET_PREFIX) :]
        return Next("detalle")
    if event.kind is Kind.TEXT and (number := find_number(event.text)):
        ctx.data["number"] = number
        return Next("detalle")
    return Again("errors.use_buttons")


async def ask_detail(ctx: Ctx) -> list[Outbound]:
    number = ctx.data.get("number", "")
    detail = await ctx.services.ticket_detail(number)
    nav = (Choice(BACK, "btn.my_tickets"), Choice(MENU_CHOICE, "btn.menu"))
    if detail is None:
        return [Outbound("estado.not_found", {"number": number}, rows(*nav, per_row=2))]
    actions = [Choice(a, ACTION_LABELS[a]) for a in _actions(detail["state"])]
    if detail.get("formato"):
        actions.append(Choice(FORMATO, ACTION_LABELS[FORMATO]))
    return [Outbound("estado.detail", detail, (*rows(*actions), *rows(*nav, per_row=2)))]


FORMATO = "formato"
ACTION_LABELS = {
    "fix": "btn.notice_fix",
    "reply": "btn.notice_reply",
    "cancel": "btn.cancel_ticket",
    FORMATO: "btn.download_formato",
}


def _actions(state: str) -> list[str]:
    """What the officer can do on their ticket: correct an observation, write to the help
    desk, or withdraw a request nobody has started on (and download its Formato again)."""
    if state == "observado":
        return ["fix", "reply"]
    if state == "registrado":
        return ["reply", "cancel"]
    if state in ("en_atencion", "atendido"):
        return ["reply"]
    return []


async def answer_detail(ctx: Ctx, event: Inbound) -> Outcome:
    if event.kind is Kind.BUTTON and event.text == BACK:
        return Next("lista")
    if event.kind is Kind.TEXT and (number := find_number(event.text)):
        ctx.data["number"] = number
        return Next("detalle")
    number = ctx.data.get("number", "")
    if event.kind is Kind.BUTTON and event.text == "fix":
        jump = await notices.fix(ctx.services, number)
        return jump or Next("detalle", [Outbound("estado.no_action", {"number": number})])
    if event.kind is Kind.BUTTON and event.text == "reply":
        if await ctx.services.can_reply(number):
            return Jump(*REPLY_TEXT, {"number": number})
        return Next("detalle", [Outbound("estado.no_action", {"number": number})])
    if event.kind is Kind.BUTTON and event.text == "cancel":
        return Next("anular")
    if event.kind is Kind.BUTTON and event.text == FORMATO:
        formato = await ctx.services.ticket_formato(number)
        if formato is None:
            return Next("detalle", [Outbound("estado.no_action", {"number": number})])
        return Next("detalle", [Outbound("estado.formato", {"number": number}, document=formato)])
    return Again("errors.use_buttons")


async def ask_cancel(ctx: Ctx) -> list[Outbound]:
    buttons = rows(
        Choice("yes", "btn.cancel_ticket_yes"), Choice("no", "btn.cancel_ticket_no"), per_row=2
    )
    return [Outbound("estado.anular", {"number": ctx.data.get("number", "")}, buttons)]


async def answer_cancel(ctx: Ctx, event: Inbound) -> Outcome:
    number = ctx.data.get("number", "")
    if event.kind is Kind.BUTTON and event.text == "no":
        return Next("detalle")
    if event.kind is Kind.BUTTON and event.text == "yes":
        if await ctx.services.cancel_ticket(number):
            return Next("detalle", [Outbound("estado.anulado", {"number": number})])
        return Next("detalle", [Outbound("estado.no_action", {"number": number})])
    return Again("errors.use_buttons")


FLOW = Flow(
    name=FlowName.STATUS,
    steps=(
        Step("lista", ask_list, answer_list, counted=False),
        Step("detalle", ask_detail, answer_detail, counted=False),
        Step("anular", ask_cancel, answer_cancel, counted=False),
    ),
    menu_label="menu.estado",
    command="estado",
    progress=False,
)
