"""Hacer una consulta: a support question with screenshots or documents, ending in a ticket.

Entity (remembered from the officer's tickets, RUC otherwise) → affected section (the PTE
sections, "Acceso o contraseña", "Otro") → a description of at least a sentence →
attachments (optional, up to 10; an album counts once in the replies) → who asks →
summary → ticket.

Who asks: a person whose earlier ticket says who they are is asked "¿Sigues siendo <name>,
<cargo>?"; "Sí" reuses it, "No" (or nobody known) asks names, surnames and cargo. Then the
institutional email, proved with the code unless this person already proved that address,
and the mobile (see :mod:`conversations.officer`). Kept under ``resp``, the same shape as
an access request's responsible (``dni`` only when reused from one).
"""

from __future__ import annotations

from typing import Any

from conversations import officer, profiles, validators
from conversations.events import Choice, Inbound, Kind, Outbound, rows
from conversations.flow import Again, Ctx, Done, Flow, Next, Outcome, Stay, Step
from conversations.names import FlowName
from conversations.steps import ask, field_step, plain, put

MAX_FILES = 10
CAPTION_MAX = 1024  # WhatsApp's and Telegram's limit for a file's caption
ATTACHMENT_KINDS = ("pdf", "png", "jpeg", "docx", "xlsx")
EXTRA_SECTIONS = (("acceso", "btn.topic_access"), ("otro", "btn.topic_other"))
LISTO, CONFIRM, CORRECT = "done", "confirm", "correct"
YES, NO = "yes", "no"
# What the ticket stores: the answers, nothing of the screens that collected them.
CONSULTATION_KEYS = (
    "ruc", "entity_name", "section", "section_name", "description", "files", "resp",
)  # fmt: skip
KNOWN_RESP = "known_resp"  # screen: who this person said they were last time
WHO_ASKS = ("nombres", "apellidos", "cargo", "email", "phone")  # all needed to send it


# ----------------------------------------------------------------- entity
async def ask_entity(ctx: Ctx) -> list[Outbound]:
    known = await ctx.services.my_entity()
    ctx.data["known"] = known
    buttons = rows(Choice("same", "btn.entity_usual")) if known else ()
    return [Outbound("consulta.entidad", {"usual": known}, buttons, ctx.progress)]


async def answer_entity(ctx: Ctx, event: Inbound) -> Outcome:
    known = ctx.data.get("known")
    if event.kind is Kind.BUTTON and event.text == "same" and known:
        ctx.data.update(ruc=known["ruc"], entity_name=known["name"])
        return Next("seccion")
    if event.kind is not Kind.TEXT:
        return Again("errors.expected_text")
    result = validators.ruc(event.text)
    if isinstance(result, validators.Invalid):
        return Again(f"errors.{result.code}")
    ctx.data["ruc"] = result.value
    name = await ctx.services.entity_name(result.value)
    if name:
        ctx.data["entity_name"] = name
        return Next("seccion")
    return Next("entidad_nombre")


async def answer_entity_name(ctx: Ctx, event: Inbound) -> Outcome:
    if event.kind is not Kind.TEXT:
        return Again("errors.expected_text")
    result = validators.entity_name(event.text)
    if isinstance(result, validators.Invalid):
        return Again(f"errors.{result.code}")
    ctx.data["entity_name"] = result.value
    return Next("seccion")


# ---------------------------------------------------------------- section
def _topics(ctx: Ctx) -> list[Choice]:
    choices = [Choice(s.code, "btn.section", {"name": s.name}) for s in ctx.services.sections]
    return choices + [Choice(code, label) for code, label in EXTRA_SECTIONS]


async def answer_section(ctx: Ctx, event: Inbound) -> Outcome:
    codes = {s.code: s.name for s in ctx.services.sections}
    if event.kind is Kind.BUTTON and event.text in codes:
        ctx.data.update(section=event.text, section_name=codes[event.text])
    elif event.kind is Kind.BUTTON and event.text in dict(EXTRA_SECTIONS):
        label = ctx.services.label(dict(EXTRA_SECTIONS)[event.text])
        ctx.data.update(section=event.text, section_name=label)
    else:
        return Again("errors.use_buttons")
    return Next("resumen") if ctx.data.get("correcting") else Next("descripcion")


# ------------------------------------------------------------ description
async def answer_description(ctx: Ctx, event: Inbound) -> Outcome:
    if event.kind is not Kind.TEXT:
        return Again("errors.expected_text")
    result = validators.free_text(event.text, 15, 3000, multiline=True)
    if isinstance(result, validators.Invalid):
        return Again(f"errors.{result.code}")
    if len(result.value.split()) < 4:
        return Again("errors.description_short")
    ctx.data["description"] = result.value
    return Next("resumen") if ctx.data.get("correcting") else Next("adjuntos")


# ------------------------------------------------------------ attachments
def _files(ctx: Ctx) -> list[dict[str, Any]]:
    files: list[dict[str, Any]] = ctx.data.setdefault("files", [])
    return files


async def ask_attachments(ctx: Ctx) -> list[Outbound]:
    data = {"count": len(_files(ctx)), "max": MAX_FILES}
    return [Outbound("consulta.adjuntos", data, rows(Choice(LISTO, "btn.done")), ctx.progress)]


def _received(ctx: Ctx) -> Outbound:
    data = {"count": len(_files(ctx)), "max": MAX_FILES}
    return Outbound("consulta.recibido", data, rows(Choice(LISTO, "btn.done")))


async def answer_attachments(ctx: Ctx, event: Inbound) -> Outcome:
    if event.kind is Kind.BUTTON and event.text == LISTO:
        if ctx.data.get("correcting"):
            return Next("resumen")
        return await _to_who(ctx)
    file = event.file
    if event.kind is not Kind.FILE or file is None:
        return Again("errors.expected_attachment")
    files = _files(ctx)
    if file.refusal is not None:
        return Stay([Outbound(f"errors.attachment_{file.refusal}", {"name": file.name})])
    if file.kind not in ATTACHMENT_KINDS:
        return Stay([Outbound("errors.attachment_type", {"name": file.name})])
    if any(f["sha256"] == file.sha256 for f in files):
        return Stay([Outbound("consulta.duplicate", {"name": file.name})])
    if len(files) >= MAX_FILES:
        return Stay([Outbound("errors.too_many_files", {"max": MAX_FILES})])
    stored = {"sha256": file.sha256, "kind": file.kind, "name": file.name, "size": file.size}
    caption = validators.free_text(event.text, 1, CAPTION_MAX)
    if event.text.strip() and isinstance(caption, validators.Valid):
        stored["caption"] = caption.value  # "Error al guardar": it goes with its file
    files.append(stored)
    groups: list[str] = ctx.data.setdefault("groups", [])
    if file.group is not None:
        if file.group in groups:
            return Stay()  # the album's first file already answered
        groups.append(file.group)
        return Stay([Outbound("consulta.album", {}, rows(Choice(LISTO, "btn.done")))])
    return Stay([_received(ctx)])


# ---------------------------------------------------------------- who asks
async def _to_who(ctx: Ctx) -> Outcome:
    known = await ctx.services.my_contact()
    ctx.data[KNOWN_RESP] = officer.contact_of(known) if known else None
    return Next("quien") if known else Next("nombres")


async def ask_who(ctx: Ctx) -> list[Outbound]:
    known = ctx.data.get(KNOWN_RESP) or {}
    buttons = rows(Choice(YES, "btn.yes"), Choice(NO, "btn.no"))
    return [Outbound("consulta.quien", {"known": known}, buttons, ctx.progress)]


async def answer_who(ctx: Ctx, event: Inbound) -> Outcome:
    known = ctx.data.get(KNOWN_RESP)
    if not known:
        return Next("nombres")
    if event.kind is not Kind.BUTTON or event.text not in (YES, NO):
        return Again("errors.use_buttons")
    if event.text == YES:
        ctx.data["resp"] = dict(known)
        # Proved before: all of it on the summary ("Corregir" changes any of it); else the code.
        return await officer.prove_email(ctx, _to_summary)
    if profiles.same_name(ctx.data.get("resp") or {}, known):
        ctx.data["resp"] = {}  # someone else asks: nothing of the person shown is kept
    return Next("nombres")


def _to_summary(_ctx: Ctx) -> Outcome:
    return Next("resumen")


def route(ctx: Ctx, current: str) -> Outcome:
    """Each question of who asks leads to the next; the mobile, to the summary."""
    return Next("resumen") if current == officer.PHONE else Next()


def _person_step(name: str, key: str, field: str) -> Step:
    validate = plain(validators.person_name if field != "cargo" else validators.name)
    return field_step(name, key, validate, put("resp", field), lambda ctx, _n: Next())


# ---------------------------------------------------------------- summary
async def ask_summary(ctx: Ctx) -> list[Outbound]:
    ctx.data["correcting"] = False
    data = {
        "entity": ctx.data["entity_name"],
        "ruc": ctx.data["ruc"],
        "section": ctx.data["section_name"],
        "description": ctx.data["description"],
        "files": _files(ctx),
        "resp": ctx.data.get("resp") or {},  # a draft from before who asks was asked: none
    }
    buttons = rows(Choice(CONFIRM, "btn.confirm_send"), Choice(CORRECT, "btn.correct"))
    return [Outbound("consulta.resumen", data, buttons, ctx.progress)]


async def answer_summary(ctx: Ctx, event: Inbound) -> Outcome:
    if event.kind is Kind.BUTTON and event.text == CORRECT:
        return Next("corregir")
    if event.kind is Kind.BUTTON and event.text == CONFIRM:
        resp = ctx.data.get("resp") or {}
        if not all(resp.get(field) for field in WHO_ASKS) or not resp.get("verified"):
            return await _to_who(ctx)  # a draft older than the question of who asks
        submitted = await ctx.services.submit_consultation(
            {key: ctx.data[key] for key in CONSULTATION_KEYS if key in ctx.data}
        )
        data = {
            "number": submitted.number,
            "due": submitted.due,
            "days": submitted.business_days,
            "count": len(_files(ctx)),
            "email": ctx.data["resp"]["email"],
        }
        return Done(messages=[Outbound("consulta.registrada", data)])
    return Again("errors.use_buttons")


PARTS = {
    "seccion": "btn.part_seccion",
    "descripcion": "btn.part_descripcion",
    "adjuntos": "btn.part_adjuntos",
    "nombres": "btn.part_responsable",
}


async def ask_correct(ctx: Ctx) -> list[Outbound]:
    buttons = [Choice(step, label) for step, label in PARTS.items()]
    buttons.append(Choice("back", "btn.back_to_summary"))
    return [Outbound("solicitud.corregir", {}, rows(*buttons))]


async def answer_correct(ctx: Ctx, event: Inbound) -> Outcome:
    if event.kind is Kind.BUTTON and event.text == "back":
        return Next("resumen")
    if event.kind is Kind.BUTTON and event.text in PARTS:
        ctx.data["correcting"] = True  # the part done, back to the summary
        return Next(event.text)
    return Again("errors.use_buttons")


FLOW = Flow(
    name=FlowName.CONSULTATION,
    steps=(
        Step("entidad", ask_entity, answer_entity),
        Step("entidad_nombre", ask("consulta.entidad_nombre"), answer_entity_name, counted=False),
        Step("seccion", ask("consulta.seccion", choices=_topics), answer_section),
        Step("descripcion", ask("consulta.descripcion"), answer_description),
        Step("adjuntos", ask_attachments, answer_attachments),
        # Not numbered: only for someone known; "Sí" skips names, surnames and cargo.
        Step("quien", ask_who, answer_who, counted=False),
        _person_step("nombres", "consulta.nombres", "nombres"),
        _person_step("apellidos", "solicitud.apellidos", "apellidos"),
        _person_step("cargo", "solicitud.cargo", "cargo"),
        *officer.contact_steps(route),
        Step("resumen", ask_summary, answer_summary),
        Step("corregir", ask_correct, answer_correct, counted=False),
    ),
    menu_label="menu.consulta",
    command="consulta",
    keeps_draft=True,
    undo_keys=frozenset({"correcting"}),
)
