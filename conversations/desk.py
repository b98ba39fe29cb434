"""Bandeja de la mesa de ayuda: help-desk staff work tickets from the chat.

``/pendientes`` opens the queue, ``/ticket N`` a card, ``/buscar RUC-o-nombre`` a search.
The card's buttons (Tomar, Responder, Observar, Atender, Cerrar, Ver adjuntos) are the
actions that apply to the ticket's state now. The flow is ``staff_only`` (the engine
refuses it to anyone else) and every service it calls checks again on the server that the
writer is staff and that the ticket's state still allows the action.

Services used: ``desk_queue()``, ``desk_search(text)``, ``desk_card(number)``,
``desk_take``, ``desk_observe``, ``desk_attend``, ``desk_close``, ``desk_reply``,
``desk_files``. Actions return None when done, or the ticket's current state when it no
longer allows them (a colleague moved it meanwhile).
"""

from __future__ import annotations

from typing import Any

from conversations import validators
from conversations.events import Choice, Inbound, Kind, Outbound, rows
from conversations.flow import Again, Ctx, Flow, Next, Outcome, Stay, Step
from conversations.names import MENU_CHOICE, TICKET_PREFIX, FlowName
from conversations.notices import typed_message
from conversations.status import find_number

QUEUE, MENU, SEARCH, BACK = "queue", MENU_CHOICE, "search", "back"
ACTIONS = ("take", "reply", "observe", "attend", "close", "files")


def _nav(*extra: Choice) -> tuple[Choice, ...]:
    return (*extra, Choice(QUEUE, "btn.desk_queue"), Choice(MENU, "btn.menu"))


def _ticket_buttons(items: list[dict[str, Any]]) -> list[Choice]:
    return [Choice(TICKET_PREFIX + t["number"], "btn.desk_item", t) for t in items]


# -------------------------------------------------------------------- queue
async def ask_queue(ctx: Ctx) -> list[Outbound]:
    items, total = await ctx.services.desk_queue()
    buttons = rows(
        *_ticket_buttons(items), Choice(SEARCH, "btn.desk_search"), Choice(MENU, "btn.menu")
    )
    return [Outbound("mesa.cola", {"items": items, "total": total}, buttons)]


async def answer_list(ctx: Ctx, event: Inbound) -> Outcome:
    """A ticket tapped (or its number typed) in the queue or in search results."""
    if event.kind is Kind.BUTTON and event.text.startswith(TICKET_PREFIX):
        ctx.data["number"] = event.text[len(TICKET_PREFIX) :]
        return Next("ficha")
    if event.kind is Kind.BUTTON and event.text == SEARCH:
        ctx.data.pop("query", None)
        return Next("buscar")
    if event.kind is Kind.BUTTON and event.text == QUEUE:
        return Next("cola")
    if event.kind is Kind.TEXT and (number := find_number(event.text)):
        ctx.data["number"] = number
        return Next("ficha")
    if event.kind is Kind.TEXT:
        return _search(ctx, event.text)
    return Again("errors.use_buttons")


# ------------------------------------------------------------------- search
def _search(ctx: Ctx, text: str) -> Outcome:
    checked = validators.free_text(text, 2, 100)
    if isinstance(checked, validators.Invalid) and not text.strip().isdigit():
        return Again("mesa.buscar_invalido")
    ctx.data["query"] = text.strip()
    return Next("buscar")


async def ask_search(ctx: Ctx) -> list[Outbound]:
    query = ctx.data.pop("args", "") or ctx.data.get("query", "")
    if not query:
        return [Outbound("mesa.buscar", {}, rows(*_nav()))]
    ctx.data["query"] = query
    items = await ctx.services.desk_search(query)
    buttons = rows(*_ticket_buttons(items), *_nav())
    return [Outbound("mesa.resultados", {"query": query, "items": items}, buttons)]


# --------------------------------------------------------------------- card
async def ask_card(ctx: Ctx) -> list[Outbound]:
    args = ctx.data.pop("args", None)
    if args is not None:
        ctx.data["number"] = find_number(args) or args.strip()[:30]
    number = ctx.data.get("number", "")
    card = await ctx.services.desk_card(number) if number else None
    if card is None:
        ctx.data.pop("number", None)
        return [Outbound("mesa.no_existe", {"number": number}, rows(*_nav()))]
    ctx.data["parts"] = card["parts"]
    ctx.data["type"] = card["type"]
    buttons = [Choice(action, f"btn.desk_{action}") for action in card["actions"]]
    return [Outbound("mesa.ficha", card, rows(*buttons, *_nav(), per_row=2))]


async def answer_card(ctx: Ctx, event: Inbound) -> Outcome:
    number = ctx.data.get("number")
    if event.kind is Kind.BUTTON and event.text == BACK and number:
        return Next("ficha")  # after the files: the card again
    if event.kind is not Kind.BUTTON or event.text not in ACTIONS or not number:
        return await answer_list(ctx, event)
    services = ctx.services
    if event.text == "files":
        documents = await services.desk_files(number)
        if not documents:
            return Stay([Outbound("mesa.sin_adjuntos", {"number": number})])
        sent = [Outbound("mesa.adjunto", {"name": d.filename}, document=d) for d in documents]
        # The files end with a way on, not in a dead end.
        after = {"number": number, "count": len(documents)}
        nav = rows(*_nav(Choice(BACK, "btn.desk_back")), per_row=2)
        return Stay([*sent, Outbound("mesa.adjuntos_fin", after, nav)])
    if event.text == "reply":
        return Next("responder")
    if event.text == "observe":
        return Next("observar_parte")
    if event.text == "attend":
        return Next("atender")
    action = services.desk_take if event.text == "take" else services.desk_close
    refused = await action(number)
    return _done(number, refused, f"mesa.hecho_{event.text}")


def _done(number: str, refused: str | None, key: str, **data: Any) -> Outcome:
    if refused is not None:
        return Next("ficha", [Outbound("mesa.no_aplica", {"number": number, "state": refused})])
    return Next("ficha", [Outbound(key, {"number": number, **data})])


# ------------------------------------------------------------------ actions
async def ask_reply(ctx: Ctx) -> list[Outbound]:
    return [
        Outbound(
            "mesa.responder", {"number": ctx.data["number"]}, rows(Choice(BACK, "btn.desk_back"))
        )
    ]


async def answer_reply(ctx: Ctx, event: Inbound) -> Outcome:
    if event.kind is Kind.BUTTON and event.text == BACK:
        return Next("ficha")
    text = typed_message(event)
    if isinstance(text, Again):
        return text
    number = ctx.data["number"]
    refused = await ctx.services.desk_reply(number, text)
    return _done(number, refused, "mesa.respuesta_enviada")


async def ask_part(ctx: Ctx) -> list[Outbound]:
    parts = ctx.data.get("parts", ["otro"])
    buttons = [Choice(part, f"btn.desk_part_{part}") for part in parts]
    return [
        Outbound(
            "mesa.observar_parte",
            {"number": ctx.data["number"]},
            rows(*buttons, Choice(BACK, "btn.desk_back")),
        )
    ]


async def answer_part(ctx: Ctx, event: Inbound) -> Outcome:
    if event.kind is Kind.BUTTON and event.text == BACK:
        return Next("ficha")
    if event.kind is Kind.BUTTON and event.text in ctx.data.get("parts", ["otro"]):
        ctx.data["part"] = event.text
        return Next("observar_texto")
    return Again("errors.use_buttons")


async def ask_observation(ctx: Ctx) -> list[Outbound]:
    data = {"number": ctx.data["number"], "part": ctx.data.get("part", "otro")}
    return [Outbound("mesa.observar_texto", data, rows(Choice(BACK, "btn.desk_back")))]


async def answer_observation(ctx: Ctx, event: Inbound) -> Outcome:
    if event.kind is Kind.BUTTON and event.text == BACK:
        return Next("ficha")
    text = typed_message(event)
    if isinstance(text, Again):
        return text
    number = ctx.data["number"]
    result = await ctx.services.desk_observe(number, ctx.data.get("part", "otro"), text)
    if isinstance(result, str):
        return _done(number, result, "")
    return _done(number, None, "mesa.hecho_observe", paused=result)


async def ask_attend(ctx: Ctx) -> list[Outbound]:
    """Each type closes its own way: a consulta with its answer (required), which the officer
    reads in the chat; an access request or a profile change with a tap, or with a message."""
    kind = ctx.data.get("type", "accesos")
    back = Choice(BACK, "btn.desk_back")
    choices = (back,) if kind == "consulta" else (Choice("yes", "btn.desk_attend_yes"), back)
    data = {"number": ctx.data["number"], "type": kind}
    return [Outbound("mesa.atender", data, rows(*choices, per_row=2))]


async def answer_attend(ctx: Ctx, event: Inbound) -> Outcome:
    if event.kind is Kind.BUTTON and event.text == BACK:
        return Next("ficha")
    kind = ctx.data.get("type", "accesos")
    message: str | None = None
    if event.kind is Kind.TEXT:  # the answer, or a message that goes with the closing
        typed = typed_message(event)
        if isinstance(typed, Again):
            return typed
        message = typed
    elif event.kind is Kind.BUTTON and event.text == "yes" and kind != "consulta":
        message = None
    elif kind == "consulta":
        return Again("mesa.atender_sin_respuesta")
    else:
        return Again("errors.use_buttons")
    number = ctx.data["number"]
    refused = await ctx.services.desk_attend(number, message)
    return _done(number, refused, "mesa.hecho_attend", type=kind, message=message is not None)


FLOW = Flow(
    name=FlowName.DESK,
    steps=(
        Step("cola", ask_queue, answer_list, counted=False),
        Step("buscar", ask_search, answer_list, counted=False),
        Step("ficha", ask_card, answer_card, counted=False),
        Step("responder", ask_reply, answer_reply, counted=False),
        Step("observar_parte", ask_part, answer_part, counted=False),
        Step("observar_texto", ask_observation, answer_observation, counted=False),
        Step("atender", ask_attend, answer_attend, counted=False),
    ),
    menu_label="menu.mesa",
    command="pendientes",
    commands={"ticket": "ficha", "buscar": "buscar"},
    progress=False,
    staff_only=True,
    # Staff are not the data subjects of the officers' notice: the desk works without it.
    needs_consent=False,
)
