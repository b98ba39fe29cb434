"""Solicitar accesos al PTE: from the RUC to a registered ticket, one question at a time.

Parts: entity (RUC, name) → the responsible (names, DNI, cargo, institutional email proved
with a code, mobile) → the resolution (number, date, authority, PDF) → the profiles (one
person for every section, or section by section) → summary → ticket. "Corregir" on the
summary jumps to a part and comes back to the summary when that part is done.

Services used (``ctx.services``): ``entity_name(ruc)``, ``email_proved(email)``,
``send_code(email)``, ``check_code(email, code)`` (see :mod:`conversations.officer`),
``submit_access_request(data)``, ``today()``, ``local_outbox`` and ``sections``.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from conversations import officer, profiles, validators
from conversations.events import Choice, Document, Inbound, Kind, Outbound, rows
from conversations.flow import Again, Ctx, Done, Flow, Next, Outcome, Stay, Step
from conversations.names import FlowName
from conversations.steps import KEEP, ask, field_step, get, kept, plain, put

AUTHORITIES = ("alcalde", "gobernador", "ministro", "titular", "rector", "otra")
PART_START = {"entidad": "ruc", "responsable": "nombres", "resolucion": "res_numero"}
PART_END = {"entidad", "celular", "res_pdf"}
CONFIRM, CORRECT = "confirm", "correct"


# The fields of each part, for correcting one of them alone (Corregir → part → field).
PART_FIELDS = {
    "entidad": ("ruc", "entidad"),
    "responsable": ("nombres", "apellidos", "dni", "cargo", "correo", "celular"),
    "resolucion": ("res_numero", "res_fecha", "res_autoridad", "res_pdf"),
}
ONE_FIELD = "field"  # data["correcting"]: True for a whole part, "field" for one field


def route(ctx: Ctx, current: str) -> Outcome:
    """Where an answered step leads: the next row, or back to the summary when correcting
    (after the part's last field, or after the one field being corrected)."""
    correcting = ctx.data.get("correcting")
    if correcting == ONE_FIELD or (correcting and current in PART_END):
        return Next("resumen")
    return Next()


# ------------------------------------------------------------------- entity
def _entity_name(ctx: Ctx) -> str | None:
    return officer.text_at(ctx, "entity_name")


async def ask_entity_name(ctx: Ctx) -> list[Outbound]:
    known = await ctx.services.entity_name(ctx.data["ruc"])
    current = _entity_name(ctx)
    buttons = [Choice(KEEP, "btn.keep")] if current else []
    if known and known != current:
        buttons.append(Choice("known", "btn.use_name", {"name": known}))
    ctx.data["known_name"] = known
    data = {"known": known}
    return [Outbound("solicitud.entidad", data, rows(*buttons), ctx.progress, current=current)]


async def answer_entity_name(ctx: Ctx, event: Inbound) -> Outcome:
    if kept(ctx, event, _entity_name):
        return route(ctx, "entidad")
    if event.kind is Kind.BUTTON and event.text == "known" and ctx.data.get("known_name"):
        ctx.data["entity_name"] = ctx.data["known_name"]
        return route(ctx, "entidad")
    if event.kind is not Kind.TEXT:
        return Again("errors.expected_text")
    result = validators.entity_name(event.text)
    if isinstance(result, validators.Invalid):
        return Again(f"errors.{result.code}")
    ctx.data["entity_name"] = result.value
    return route(ctx, "entidad")


def _resolution_date(ctx: Ctx) -> str | None:
    value = get(ctx, "res", "fecha")
    return validators.display_date(value) if value else None


# ----------------------------------------------- email, code, mobile (officer.py)
def _email_done(ctx: Ctx) -> Outcome:
    """An email that needs no code: on to the mobile, or back to the summary when the email
    alone was being corrected."""
    return Next("resumen") if ctx.data.get("correcting") == ONE_FIELD else Next("celular")


# ------------------------------------------ the responsible is not a colleague
def _colleague_with(ctx: Ctx, field: str, value: str) -> dict[str, Any] | None:
    """A colleague already named with this DNI or mobile (when the responsible corrects
    their own data after naming colleagues)."""
    for ref, person in profiles.named(ctx):
        if ref != profiles.ME and person.get(field) == value:
            return person
    return None


async def _refuse_dni(ctx: Ctx, dni: str) -> Outcome | None:
    taken = _colleague_with(ctx, "dni", dni)
    if taken is None:
        return None
    return Again("errors.dni_colleague", {"name": profiles.full_name(taken)})


async def _refuse_phone(ctx: Ctx, phone: str) -> Outcome | None:
    taken = _colleague_with(ctx, "phone", phone)
    if taken is None:
        return None
    return Again("errors.phone_colleague", {"name": profiles.full_name(taken)})


# ------------------------------------------------------------- resolution
def resolution_number(text: str) -> validators.Valid[str] | validators.Invalid:
    result = validators.free_text(text, 3, 150)
    if isinstance(result, validators.Valid) and not any(ch.isdigit() for ch in result.value):
        return validators.Invalid("resolution_number")
    return result


def _authority_choices(_ctx: Ctx) -> list[Choice]:
    return [Choice(code, f"btn.authority_{code}") for code in AUTHORITIES]


async def answer_authority(ctx: Ctx, event: Inbound) -> Outcome:
    if event.kind is Kind.BUTTON and event.text in AUTHORITIES:
        if event.text == "otra":
            return Next("res_autoridad_otra")
        res = ctx.data.setdefault("res", {})
        res["autoridad"] = event.text
        res.pop("autoridad_texto", None)
        return _after_authority(ctx)
    return Again("errors.use_buttons")


def _after_authority(ctx: Ctx) -> Outcome:
    return Next("resumen") if ctx.data.get("correcting") == ONE_FIELD else Next("res_pdf")


def save_other_authority(ctx: Ctx, value: str) -> None:
    ctx.data.setdefault("res", {}).update(autoridad="otra", autoridad_texto=value)


MAX_PHOTOS = 20  # pages of a resolution sent as photos
PHOTO_KINDS = ("jpeg", "png")
PHOTOS_DONE, PHOTOS_USE, PHOTOS_AGAIN = "photos_done", "photos_use", "photos_again"


async def ask_pdf(ctx: Ctx) -> list[Outbound]:
    sent = get(ctx, "res", "pdf")
    buttons = rows(Choice("keep", "btn.keep_pdf")) if sent else ()
    return [Outbound("solicitud.res_pdf", {"sent": sent}, buttons, ctx.progress)]


def _photos(ctx: Ctx) -> list[dict[str, str]]:
    photos: list[dict[str, str]] = ctx.data.setdefault("res_photos", [])
    return photos


def _add_photo(ctx: Ctx, event: Inbound) -> Outcome:
    """A page of a resolution that exists only on paper: kept until «Listo, armar el PDF»."""
    file = event.file
    assert file is not None
    assert file.sha256 is not None
    photos = _photos(ctx)
    if len(photos) >= MAX_PHOTOS:
        return Stay([Outbound("errors.too_many_photos", {"max": MAX_PHOTOS})])
    if all(p["sha256"] != file.sha256 for p in photos):
        photos.append({"sha256": file.sha256, "kind": file.kind or "jpeg"})
    done = rows(Choice(PHOTOS_DONE, "btn.photos_done"))
    groups: list[str] = ctx.data.setdefault("photo_groups", [])
    if file.group is not None:
        if file.group in groups:
            return Stay()  # the album's first photo already answered
        groups.append(file.group)
        return Stay([Outbound("solicitud.fotos_album", {}, done)])
    return Stay([Outbound("solicitud.foto_recibida", {"count": len(photos)}, done)])


async def answer_pdf(ctx: Ctx, event: Inbound) -> Outcome:
    if event.kind is Kind.BUTTON and event.text == "keep" and get(ctx, "res", "pdf"):
        return route(ctx, "res_pdf")
    if event.kind is Kind.BUTTON and event.text == PHOTOS_DONE and _photos(ctx):
        built = await ctx.services.pdf_from_photos([p["sha256"] for p in _photos(ctx)])
        if isinstance(built, str):
            ctx.data["res_photos"] = []
            return Again(f"errors.{built}")
        ctx.data["res_photos_pdf"] = built
        return Next("res_fotos")
    file = event.file
    if event.kind is not Kind.FILE or file is None:
        return Again("errors.expected_pdf")
    if file.refusal is not None:
        return Again(f"errors.{file.refusal}")
    if file.kind in PHOTO_KINDS:
        return _add_photo(ctx, event)
    if file.kind != "pdf":
        return Again("errors.pdf_required")
    ctx.data.update(res_photos=[], photo_groups=[], res_photos_pdf=None)  # a PDF after all
    ctx.data.setdefault("res", {})["pdf"] = {
        "sha256": file.sha256,
        "pages": file.pages,
        "name": file.name,
    }
    return route(ctx, "res_pdf")


# ---------------------------------------------------------------- summary
# What a request is, as the summary shows it and the ticket stores it: nothing of the
# screens that collected it (which question was being corrected, suggestions shown...).
REQUEST_KEYS = ("ruc", "entity_name", "resp", "res", "justicia", "profiles", "people")


def request(data: dict[str, Any]) -> dict[str, Any]:
    return {key: data[key] for key in REQUEST_KEYS if key in data}


async def ask_photos_pdf(ctx: Ctx) -> list[Outbound]:
    """The PDF built from the photos: its page count and its first page, to confirm."""
    built = ctx.data.get("res_photos_pdf") or {}
    photos = _photos(ctx)
    first = photos[0] if photos else None
    document = None
    if first is not None:
        mime = "image/png" if first["kind"] == "png" else "image/jpeg"
        extension = "png" if first["kind"] == "png" else "jpg"
        document = Document(first["sha256"], f"pagina_1.{extension}", mime)
    buttons = rows(Choice(PHOTOS_USE, "btn.photos_use"), Choice(PHOTOS_AGAIN, "btn.photos_again"))
    data = {"pages": built.get("pages") or len(photos)}
    return [Outbound("solicitud.fotos_pdf", data, buttons, document=document)]


async def answer_photos_pdf(ctx: Ctx, event: Inbound) -> Outcome:
    built = ctx.data.get("res_photos_pdf")
    if event.kind is Kind.BUTTON and event.text == PHOTOS_USE and built:
        ctx.data.setdefault("res", {})["pdf"] = {
            "sha256": built["sha256"],
            "pages": built["pages"],
            "name": built["name"],
        }
        ctx.data.update(res_photos=[], photo_groups=[], res_photos_pdf=None)
        after = route(ctx, "res_pdf")  # what follows the PDF: the profiles, or the summary
        return after if isinstance(after, Next) and after.step else Next(profiles.START)
    if event.kind is Kind.BUTTON and event.text == PHOTOS_AGAIN:
        ctx.data.update(res_photos=[], photo_groups=[], res_photos_pdf=None)
        return Next("res_pdf")
    return Again("errors.use_buttons")


def summary_data(ctx: Ctx) -> dict[str, Any]:
    data = ctx.data
    return {
        "ruc": data["ruc"],
        "entity": data["entity_name"],
        "resp": data["resp"],
        "res": data["res"],
        "authority": data["res"].get("autoridad_texto")
        or ctx.services.label(f"btn.authority_{data['res']['autoridad']}"),
        "justicia": data.get("justicia") is True,
        "rows": profiles.summary_rows(ctx),
    }


async def ask_summary(ctx: Ctx) -> list[Outbound]:
    ctx.data["correcting"] = False
    buttons = rows(Choice(CONFIRM, "btn.confirm_send"), Choice(CORRECT, "btn.correct"))
    data = {**summary_data(ctx), "ticket": ctx.data.get("ticket")}
    return [Outbound("solicitud.resumen", data, buttons, ctx.progress)]


async def answer_summary(ctx: Ctx, event: Inbound) -> Outcome:
    if event.kind is Kind.BUTTON and event.text == CORRECT:
        return Next("corregir")
    if event.kind is Kind.BUTTON and event.text == CONFIRM and ctx.data.get("ticket"):
        # A correction of an observed request: the same ticket, back to "En atención".
        fixed = await ctx.services.resubmit_access_request(
            {**request(ctx.data), "ticket": ctx.data["ticket"]}
        )
        if fixed is None:
            return Done(
                [Outbound("solicitud.subsanacion_cerrada", {"number": ctx.data["ticket"]})]
            )
        done = Outbound("solicitud.subsanada", {"number": fixed.number, "due": fixed.due})
        formato = Outbound("solicitud.formato", {}, document=fixed.formato)
        return Done(messages=[done, formato])
    if event.kind is Kind.BUTTON and event.text == CONFIRM:
        submitted = await ctx.services.submit_access_request(request(ctx.data))
        registered = Outbound(
            "solicitud.registrada",
            {
                "number": submitted.number,
                "due": submitted.due,
                "days": submitted.business_days,
                "email": ctx.data["resp"]["email"],
                "local_outbox": ctx.services.local_outbox,
            },
        )
        formato = Outbound("solicitud.formato", {}, document=submitted.formato)
        return Done(messages=[registered, formato])
    return Again("errors.use_buttons")


PARTS = ("entidad", "responsable", "resolucion", "perfiles")


async def ask_correct(ctx: Ctx) -> list[Outbound]:
    buttons = [Choice(part, f"btn.part_{part}") for part in PARTS]
    buttons.append(Choice("back", "btn.back_to_summary"))
    return [Outbound("solicitud.corregir", {}, rows(*buttons))]


async def answer_correct(ctx: Ctx, event: Inbound) -> Outcome:
    if event.kind is Kind.BUTTON and event.text == "back":
        return Next("resumen")
    if event.kind is Kind.BUTTON and event.text in PARTS:
        if event.text == "perfiles":
            ctx.data["correcting"] = True
            return Next(profiles.START)
        ctx.data["fix_part"] = event.text
        return Next("corregir_campo")
    return Again("errors.use_buttons")


async def ask_correct_field(ctx: Ctx) -> list[Outbound]:
    part = ctx.data.get("fix_part", "responsable")
    buttons = [Choice(name, f"btn.field_{name}") for name in PART_FIELDS[part]]
    buttons += [Choice("all", "btn.field_all"), Choice("back", "btn.back_to_summary")]
    return [Outbound("solicitud.corregir_campo", {}, rows(*buttons, per_row=2))]


async def answer_correct_field(ctx: Ctx, event: Inbound) -> Outcome:
    part = ctx.data.get("fix_part", "responsable")
    if event.kind is Kind.BUTTON and event.text == "back":
        return Next("resumen")
    if event.kind is Kind.BUTTON and event.text == "all":
        ctx.data["correcting"] = True
        return Next(PART_START[part])
    if event.kind is Kind.BUTTON and event.text in PART_FIELDS[part]:
        ctx.data["correcting"] = ONE_FIELD
        return Next(event.text)
    return Again("errors.use_buttons")


FLOW = Flow(
    name=FlowName.ACCESS_REQUEST,
    steps=(
        field_step("ruc", "solicitud.ruc", plain(validators.ruc), put("ruc"), route),
        Step("entidad", ask_entity_name, answer_entity_name),
        field_step(
            "nombres",
            "solicitud.nombres",
            plain(validators.person_name),
            put("resp", "nombres"),
            route,
        ),
        field_step(
            "apellidos",
            "solicitud.apellidos",
            plain(validators.person_name),
            put("resp", "apellidos"),
            route,
        ),
        field_step(
            "dni",
            "solicitud.dni",
            plain(validators.dni),
            put("resp", "dni"),
            route,
            refuse=_refuse_dni,
        ),
        field_step(
            "cargo", "solicitud.cargo", plain(validators.name), put("resp", "cargo"), route
        ),
        *officer.contact_steps(route, email_done=_email_done, refuse_phone=_refuse_phone),
        field_step(
            "res_numero",
            "solicitud.res_numero",
            plain(resolution_number),
            put("res", "numero"),
            route,
        ),
        field_step(
            "res_fecha",
            "solicitud.res_fecha",
            lambda text, ctx: validators.past_date(text, ctx.services.today()),
            lambda ctx, value: put("res", "fecha")(ctx, value.isoformat()),
            route,
            current=_resolution_date,
        ),
        Step(
            "res_autoridad",
            ask("solicitud.res_autoridad", choices=_authority_choices),
            answer_authority,
        ),
        field_step(
            "res_autoridad_otra",
            "solicitud.res_autoridad_otra",
            plain(validators.name),
            save_other_authority,
            lambda ctx, _name: _after_authority(ctx),
            counted=False,
        ),
        Step("res_pdf", ask_pdf, answer_pdf),
        *profiles.STEPS,
        Step("resumen", ask_summary, answer_summary),
        Step("corregir", ask_correct, answer_correct, counted=False),
        Step("corregir_campo", ask_correct_field, answer_correct_field, counted=False),
        # Off the table's path (reached from res_pdf only): the PDF built from photos.
        Step("res_fotos", ask_photos_pdf, answer_photos_pdf, counted=False),
    ),
    menu_label="menu.solicitud",
    command="solicitar",
    keeps_draft=True,
    undo_keys=profiles.UNDO_KEYS | {"correcting", "fix_part"},
)

# "Corregir" on an observation opens the same form at the observed part, with the request
# as it was sent; the summary then resubmits the same ticket. A separate flow, so that a
# new request's draft and a correction never overwrite each other.
CORRECTION_FLOW = dataclasses.replace(
    FLOW, name=FlowName.CORRECTION, menu_label=None, command=None
)
# The steps the tables above name (Corregir's parts and fields) are steps of the form.
FLOW.require(*PART_START.values(), *PART_END, *(f for fs in PART_FIELDS.values() for f in fs))
