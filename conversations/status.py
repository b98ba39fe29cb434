"""Estado de mis trámites: the officer's own tickets, newest first, and each one's detail.

A ticket number typed anywhere ("¿cómo va PTE-2026-000123?") opens its detail; it is shown
only to its owner or to staff, and anyone else gets the same answer as for a number that
does not exist.
"""

from __future__ import annotations

import re

from conversations.events import Choice, Inbound, Kind, Outbound, rows
from conversations.flow import Again, Ctx, Flow, Next, Outcome, Step

TICKET = re.compile(r"\bPTE\s*-?\s*(\d{4})\s*-?\s*(\d{1,6})\b", re.IGNORECASE)
PREFIX = "t:"
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
            Choice("f:solicitud", "btn.start_request_short"), Choice("menu", "btn.menu")
        )
        return [Outbound("estado.none", {}, buttons)]
    buttons = rows(
        *[Choice(PREFIX + t["number"], "btn.ticket", t) for t in tickets],
        Choice("menu", "btn.menu"),
    )
    return [Outbound("estado.list", {"count": len(tickets)}, buttons)]


async def answer_list(ctx: Ctx, event: Inbound) -> Outcome:
    if event.kind is Kind.BUTTON and event.text.startswith(PREFIX):
        ctx.data["number"] = event.text[len(PREFIX) :]
        return Next("detalle")
    if event.kind is Kind.TEXT and (number := find_number(event.text)):
        ctx.data["number"] = number
        return Next("detalle")
    return Again("errors.use_buttons")


async def ask_detail(ctx: Ctx) -> list[Outbound]:
    number = ctx.data.get("number", "")
    detail = await ctx.services.ticket_detail(number)
    buttons = rows(Choice(BACK, "btn.my_tickets"), Choice("menu", "btn.menu"), per_row=2)
    if detail is None:
        return [Outbound("estado.not_found", {"number": number}, buttons)]
    return [Outbound("estado.detail", detail, buttons)]


async def answer_detail(ctx: Ctx, event: Inbound) -> Outcome:
    if event.kind is Kind.BUTTON and event.text == BACK:
        return Next("lista")
    if event.kind is Kind.TEXT and (number := find_number(event.text)):
        ctx.data["number"] = number
        return Next("detalle")
    return Again("errors.use_buttons")


FLOW = Flow(
    name="estado",
    steps=(
        Step("lista", ask_list, answer_list, counted=False),
        Step("detalle", ask_detail, answer_detail, counted=False),
    ),
    menu_label="menu.estado",
    command="estado",
    progress=False,
)
