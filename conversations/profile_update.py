"""Actualizar perfiles: change who is in charge of PTE sections, for an entity whose access
request was attended, asked only by its verified responsible (email code confirmed).

Entity → section(s) (toggle, then Continuar) → reemplazar / agregar / dar de baja →
the person's data (same checks as the request; not for dar de baja) → motivo → summary →
ticket with the updated Formato, mailed to the help desk.
"""

from __future__ import annotations

from typing import Any

from conversations import validators
from conversations.events import Choice, Inbound, Kind, Outbound, rows
from conversations.flow import Again, Ctx, Done, Flow, Next, Outcome, Step
from conversations.names import MENU_CHOICE, FlowName, menu_entry
from conversations.profiles import full_name, same_name
from conversations.steps import ask, field_step, plain, put

ACTIONS = ("reemplazar", "agregar", "baja")
CONTINUE, CONFIRM, CORRECT = "continue", "confirm", "correct"
# What the ticket stores: the answers, nothing of the screens that collected them.
CHANGE_KEYS = ("ruc", "entity_name", "base", "sections", "action", "person", "reason")


async def ask_entity(ctx: Ctx) -> list[Outbound]:
    entities = await ctx.services.managed_entities()
    ctx.data["entities"] = entities
    if not entities:
        buttons = rows(
            Choice(menu_entry(FlowName.ACCESS_REQUEST), "menu.solicitud"),
            Choice(menu_entry(FlowName.CONSULTATION), "menu.consulta"),
            Choice(MENU_CHOICE, "btn.menu"),
        )
        return [Outbound("perfiles_upd.not_allowed", {}, buttons)]
    buttons = rows(*[Choice(e["ruc"], "btn.entity_same", {"name": e["name"]}) for e in entities])
    return [Outbound("perfiles_upd.entidad", {}, buttons, ctx.progress)]


async def answer_entity(ctx: Ctx, event: Inbound) -> Outcome:
    chosen = [e for e in ctx.data.get("entities", []) if e["ruc"] == event.text]
    if event.kind is not Kind.BUTTON or not chosen:
        return Again("errors.use_buttons")
    entity = chosen[0]
    ctx.data.update(ruc=entity["ruc"], entity_name=entity["name"], base=entity["ticket"])
    ctx.data["sections"] = []
    return Next()


def _sections(ctx: Ctx) -> list[Any]:
    """The sections this entity has: a justice-only one only if its request said so."""
    entity = [e for e in ctx.data.get("entities", []) if e["ruc"] == ctx.data.get("ruc")]
    outside = bool(entity) and entity[0].get("justicia") == "no"
    return [s for s in ctx.services.sections if not (outside and s.justice_only)]


async def ask_sections(ctx: Ctx) -> list[Outbound]:
    chosen = set(ctx.data.get("sections", []))
    buttons = [
        Choice(s.code, "btn.toggle", {"name": s.name, "on": s.code in chosen})
        for s in _sections(ctx)
    ]
    if chosen:
        buttons.append(Choice(CONTINUE, "btn.continue"))
    return [
        Outbound("perfiles_upd.secciones", {"count": len(chosen)}, rows(*buttons), ctx.progress)
    ]


async def answer_sections(ctx: Ctx, event: Inbound) -> Outcome:
    codes = [s.code for s in _sections(ctx)]
    chosen: list[str] = ctx.data.setdefault("sections", [])
    if event.kind is Kind.BUTTON and event.text == CONTINUE and chosen:
        return Next()
    if event.kind is Kind.BUTTON and event.text in codes:
        if event.text in chosen:
            chosen.remove(event.text)
        else:
            chosen.append(event.text)
        chosen.sort(key=codes.index)
        return Next("secciones")
    return Again("errors.use_buttons")


async def answer_action(ctx: Ctx, event: Inbound) -> Outcome:
    if event.kind is not Kind.BUTTON or event.text not in ACTIONS:
        return Again("errors.use_buttons")
    ctx.data["action"] = event.text
    if event.text == "baja":
        ctx.data.pop("person", None)
        return Next("motivo")
    ctx.data["person"] = {}
    return Next("nombres")


def _save_email(ctx: Ctx, value: validators.EmailCheck) -> None:
    ctx.data.setdefault("person", {}).update(email=value.address, review=value.review_domain)


def _next(_ctx: Ctx, _name: str) -> Outcome:
    return Next()


def _person_step(name: str, validate: Any, field: str, **more: Any) -> Step:
    return field_step(
        name, f"perfiles.{name}", plain(validate), put("person", field), _next, counted=False,
        **more,
    )  # fmt: skip


# ------------------------------------------ one person, one DNI, one mobile
async def _refuse_dni(ctx: Ctx, dni: str) -> Outcome | None:
    """A DNI of the registry under another name is refused. Under the same name it is that
    person, who may well be given more sections (the responsible included)."""
    person = ctx.data.get("person", {})
    for known in await ctx.services.registry_people(ctx.data["base"]):
        if known["dni"] == dni and not same_name(known, person):
            return Again("errors.dni_registered", {"name": full_name(known)})
    return None


async def _refuse_phone(ctx: Ctx, phone: str) -> Outcome | None:
    """Someone else's mobile in the registry (another DNI) is refused."""
    person = ctx.data.get("person", {})
    for known in await ctx.services.registry_people(ctx.data["base"]):
        if known["phone"] == phone and known["dni"] != person.get("dni"):
            data = {"name": full_name(known), "person": full_name(person)}
            return Again("errors.phone_registered", data)
    return None


async def ask_summary(ctx: Ctx) -> list[Outbound]:
    names = {s.code: s.name for s in ctx.services.sections}
    data = {
        "entity": ctx.data["entity_name"],
        "ruc": ctx.data["ruc"],
        "sections": [names[c] for c in ctx.data["sections"]],
        "action": ctx.data["action"],
        "person": ctx.data.get("person"),
        "reason": ctx.data["reason"],
    }
    buttons = rows(Choice(CONFIRM, "btn.confirm_send"), Choice(CORRECT, "btn.start_over"))
    return [Outbound("perfiles_upd.resumen", data, buttons, ctx.progress)]


async def answer_summary(ctx: Ctx, event: Inbound) -> Outcome:
    if event.kind is Kind.BUTTON and event.text == CORRECT:
        ctx.data["sections"] = []
        return Next("secciones")
    if event.kind is Kind.BUTTON and event.text == CONFIRM:
        # Checked again now: the draft may be days old. A newer attended request for the
        # entity is the registry to change; no attended request of theirs any more, no change.
        current = {e["ruc"]: e["ticket"] for e in await ctx.services.managed_entities()}
        if ctx.data.get("ruc") not in current:
            return Done([Outbound("perfiles_upd.no_longer_allowed", {})])
        ctx.data["base"] = current[ctx.data["ruc"]]
        submitted = await ctx.services.submit_profile_update(
            {key: ctx.data[key] for key in CHANGE_KEYS if key in ctx.data}
        )
        data = {"number": submitted.number, "due": submitted.due, "days": submitted.business_days}
        formato = Outbound("solicitud.formato", {}, document=submitted.formato)
        return Done(messages=[Outbound("perfiles_upd.registrada", data), formato])
    return Again("errors.use_buttons")


FLOW = Flow(
    name=FlowName.PROFILE_UPDATE,
    steps=(
        Step("entidad", ask_entity, answer_entity),
        Step("secciones", ask_sections, answer_sections, edits=True),
        Step(
            "accion",
            ask(
                "perfiles_upd.accion",
                choices=lambda _ctx: [Choice(a, f"btn.action_{a}") for a in ACTIONS],
            ),
            answer_action,
        ),
        _person_step("nombres", validators.person_name, "nombres"),
        _person_step("apellidos", validators.person_name, "apellidos"),
        _person_step("dni", validators.dni, "dni", refuse=_refuse_dni),
        _person_step("cargo", validators.name, "cargo"),
        field_step(
            "correo", "perfiles.correo", plain(validators.email), _save_email, _next, counted=False
        ),
        _person_step("celular", validators.mobile, "phone", refuse=_refuse_phone),
        field_step(
            "motivo",
            "perfiles_upd.motivo",
            lambda text, _ctx: validators.free_text(text, 10, 1000, multiline=True),
            put("reason"),
            _next,
        ),
        Step("resumen", ask_summary, answer_summary),
    ),
    menu_label="menu.perfiles",
    command="perfiles",
    keeps_draft=True,
    undo_keys=frozenset({"action", "person", "sections"}),
)
