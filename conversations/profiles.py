"""The profiles part of a request: who is in charge of each PTE section.

First, once, whether the entity belongs to the justice system (Sí / No): sections marked
``justice_only`` in the data file ("Información focalizada", Ley 30934) apply only then, and
are "No aplica" otherwise, whatever the next answers. Then "¿Una sola persona para todas las
secciones?" (Yo / Otra persona / Definir por sección). Section by section, the buttons offer
"Yo", every person already named, and "Otra persona", which asks that person's data (same
checks as the responsible's). Assignments are kept as
``profiles[section_code] = "me" | "p<i>" | "none"``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from conversations import validators
from conversations.events import Choice, Inbound, Kind, Outbound, rows
from conversations.flow import Again, Ctx, Next, Outcome, Step
from conversations.steps import ask, field_step, plain, put
from conversations.text import normalize

START = "justicia"
MODE = "perfiles_modo"
# What the profiles part keeps for itself; going back restores it as it was (see Flow).
# "justicia" is an answer of the request, not bookkeeping: it stays, as the other answers.
# "twin": whom a refused DNI belongs to, offered as a button while that DNI is asked.
TWIN = "twin"
UNDO_KEYS = frozenset({"mode", "people", "profiles", "section_index", "pending", TWIN})
ME, OTHER, BY_SECTION, NONE = "me", "other", "sections", "none"
NAME_PARTS = ("nombres", "apellidos")
YES, NO = "yes", "no"


def applies(section: Any, data: dict[str, Any]) -> bool:
    """Whether anyone can be in charge of ``section`` for this entity: a justice-only
    section needs a "Sí" to the justice-system question (no answer means No aplica)."""
    return not getattr(section, "justice_only", False) or data.get("justicia") is True


def assignments(data: dict[str, Any], sections: Sequence[Any]) -> list[tuple[Any, Any]]:
    """(section, person data or None) for every section, in the data file's order."""
    chosen = data.get("profiles", {})
    people = data.get("people", [])
    result = []
    for section in sections:
        ref = chosen.get(section.code, NONE)
        if data.get("justicia") is False and not applies(section, data):
            # Never "Yo" for Información focalizada outside the justice system, whatever
            # an earlier pass through the profiles recorded (requests before the question
            # have no answer and are shown as they were sent).
            result.append((section, None))
        elif ref == ME:
            result.append((section, data["resp"]))
        elif ref.startswith("p") and ref[1:].isdigit() and int(ref[1:]) < len(people):
            result.append((section, people[int(ref[1:])]))
        else:
            result.append((section, None))
    return result


def summary_rows(ctx: Ctx) -> list[dict[str, Any]]:
    return [
        {"section": section.name, "person": person, "me": person is ctx.data.get("resp")}
        for section, person in assignments(ctx.data, ctx.services.sections)
    ]


# ------------------------------------------------------- justice system
async def answer_justice(ctx: Ctx, event: Inbound) -> Outcome:
    if event.kind is not Kind.BUTTON or event.text not in (YES, NO):
        return Again("errors.use_buttons")
    ctx.data["justicia"] = event.text == YES
    return Next(MODE)  # the profiles are chosen again: which sections apply may have changed


def _every_section(ctx: Ctx, ref: str) -> dict[str, str]:
    return {s.code: ref if applies(s, ctx.data) else NONE for s in ctx.services.sections}


# ---------------------------------------------------------------- mode
async def answer_mode(ctx: Ctx, event: Inbound) -> Outcome:
    if event.kind is not Kind.BUTTON or event.text not in (ME, OTHER, BY_SECTION):
        return Again("errors.use_buttons")
    ctx.data.update(mode=event.text, people=[], profiles={}, section_index=0)
    if event.text == ME:
        ctx.data["profiles"] = _every_section(ctx, ME)
        return Next("resumen")
    if event.text == OTHER:
        _new_person(ctx)
        return Next("p_nombres")
    return _to_section(ctx, 0)


# -------------------------------------------------------- section by section
def _section(ctx: Ctx) -> Any:
    return ctx.services.sections[ctx.data.get("section_index", 0)]


def _to_section(ctx: Ctx, index: int) -> Outcome:
    """The first section from ``index`` on that applies; the ones that do not are No aplica."""
    sections = ctx.services.sections
    while index < len(sections) and not applies(sections[index], ctx.data):
        ctx.data.setdefault("profiles", {})[sections[index].code] = NONE
        index += 1
    if index >= len(sections):
        return Next("resumen")
    ctx.data["section_index"] = index
    return Next("perfil_seccion", [])


async def ask_section(ctx: Ctx) -> list[Outbound]:
    section = _section(ctx)
    shown = [s.code for s in ctx.services.sections if applies(s, ctx.data)]
    buttons = [Choice(ME, "btn.me")]
    for i, person in enumerate(ctx.data.get("people", [])):
        names = {"name": full_name(person), **{k: person.get(k, "") for k in NAME_PARTS}}
        buttons.append(Choice(f"p{i}", "btn.person", names))  # its short form for buttons
    buttons.append(Choice(OTHER, "btn.other_person"))
    if section.note:
        buttons.append(Choice(NONE, "btn.not_applicable"))
    data = {
        "section": section.name,
        "note": section.note,
        "i": shown.index(section.code) + 1 if section.code in shown else 1,
        "n": len(shown),
    }
    return [Outbound("perfiles.seccion", data, rows(*buttons), ctx.progress)]


async def answer_section(ctx: Ctx, event: Inbound) -> Outcome:
    if event.kind is not Kind.BUTTON:
        return Again("errors.use_buttons")
    choice = event.text
    people = ctx.data.get("people", [])
    if choice == OTHER:
        _new_person(ctx)
        return Next("p_nombres")
    valid = {ME, NONE} | {f"p{i}" for i in range(len(people))}
    if choice not in valid or (choice == NONE and not _section(ctx).note):
        return Again("errors.use_buttons")
    return _assign(ctx, choice)


def _assign(ctx: Ctx, ref: str) -> Outcome:
    if ctx.data.get("mode") == OTHER:
        ctx.data["profiles"] = _every_section(ctx, ref)
        return Next("resumen")
    ctx.data.setdefault("profiles", {})[_section(ctx).code] = ref
    return _to_section(ctx, ctx.data.get("section_index", 0) + 1)


# ------------------------------------------------------------ another person
def _next(_ctx: Ctx, _name: str) -> Outcome:
    return Next()


PERSON_FIELDS = (
    ("nombres", "p_nombres"),
    ("apellidos", "p_apellidos"),
    ("dni", "p_dni"),
    ("cargo", "p_cargo"),
    ("email", "p_correo"),
    ("phone", "p_celular"),
)


def _save_email(ctx: Ctx, value: validators.EmailCheck) -> None:
    ctx.data.setdefault("pending", {}).update(email=value.address, review=value.review_domain)


def _pending_email(ctx: Ctx) -> str | None:
    value = ctx.data.get("pending", {}).get("email")
    return value if isinstance(value, str) else None


def _finish_person(ctx: Ctx, _name: str) -> Outcome:
    pending = ctx.data.get("pending", {})
    for field, step in PERSON_FIELDS:
        if not pending.get(field):  # never named half a person: ask what is missing
            return Next(step)
    people = ctx.data.setdefault("people", [])
    people.append(ctx.data.pop("pending"))
    return _assign(ctx, f"p{len(people) - 1}")


def same_name(a: dict[str, Any], b: dict[str, Any]) -> bool:
    """The same nombres and apellidos, as people type them (accents and case aside)."""

    def whole(p: dict[str, Any]) -> str:
        return normalize(f"{p.get('nombres', '')} {p.get('apellidos', '')}")

    return whole(a) == whole(b)


def full_name(person: dict[str, Any]) -> str:
    return f"{person.get('nombres', '')} {person.get('apellidos', '')}".strip()


def _new_person(ctx: Ctx) -> None:
    ctx.data["pending"] = {}
    ctx.data.pop(TWIN, None)


# -------------------------------------------- one person, one DNI, one mobile
def named(ctx: Ctx) -> list[tuple[str, dict[str, Any]]]:
    """Everyone already in the request, as (reference, data): the responsible, colleagues."""
    found = [(ME, ctx.data["resp"])] if ctx.data.get("resp") else []
    found += [(f"p{i}", person) for i, person in enumerate(ctx.data.get("people", []))]
    return found


async def _refuse_dni(ctx: Ctx, dni: str) -> Outcome | None:
    """A colleague's DNI that is the responsible's or another colleague's: the same person
    typed twice (offered as a button) or a typo; either way not a new person."""
    ctx.data.pop(TWIN, None)
    for ref, person in named(ctx):
        if person.get("dni") == dni:
            ctx.data[TWIN] = ref
            if ref == ME:
                return Again("errors.dni_is_yours")
            return Again("errors.dni_taken", {"name": full_name(person)})
    return None


def _twin_choice(ctx: Ctx) -> list[Choice]:
    people = dict(named(ctx))
    ref = ctx.data.get(TWIN)
    if ref == ME:
        return [Choice(ME, "btn.me")]
    if isinstance(ref, str) and ref in people:
        person = people[ref]
        names = {"name": full_name(person), **{k: person.get(k, "") for k in NAME_PARTS}}
        return [Choice(ref, "btn.person", names)]  # its short form for narrow buttons
    return []


def _take_twin(ctx: Ctx, choice: str) -> Outcome:
    """The person whose DNI was typed, chosen instead of naming them again."""
    if choice != ctx.data.get(TWIN) or not _twin_choice(ctx):
        return Again("errors.use_buttons")
    ctx.data.pop(TWIN, None)
    ctx.data.pop("pending", None)
    return _assign(ctx, choice)


async def _refuse_phone(ctx: Ctx, phone: str) -> Outcome | None:
    person = full_name(ctx.data.get("pending", {}))
    for ref, other in named(ctx):
        if other.get("phone") == phone:
            if ref == ME:
                return Again("errors.phone_is_yours", {"person": person})
            return Again("errors.phone_taken", {"name": full_name(other), "person": person})
    return None


def _person_step(name: str, validate: Any, field: str, route: Any = _next, **more: Any) -> Step:
    return field_step(
        f"p_{name}", f"perfiles.{name}", plain(validate), put("pending", field), route,
        counted=False, **more,
    )  # fmt: skip


STEPS: tuple[Step, ...] = (
    Step(
        START,
        ask(
            "perfiles.justicia",
            choices=lambda _ctx: [Choice(YES, "btn.yes"), Choice(NO, "btn.no")],
        ),
        answer_justice,
    ),
    Step(
        MODE,
        ask(
            "perfiles.modo",
            choices=lambda _ctx: [
                Choice(ME, "btn.me"),
                Choice(OTHER, "btn.other_person"),
                Choice(BY_SECTION, "btn.by_section"),
            ],
        ),
        answer_mode,
    ),
    # Not numbered: it repeats per section, and is skipped when one person holds them all.
    Step("perfil_seccion", ask_section, answer_section, counted=False, repeats=True),
    _person_step("nombres", validators.person_name, "nombres"),
    _person_step("apellidos", validators.person_name, "apellidos"),
    # The same DNI as someone already named is refused, offering that person instead.
    _person_step(
        "dni",
        validators.dni,
        "dni",
        refuse=_refuse_dni,
        choices=_twin_choice,
        on_choice=_take_twin,
    ),
    _person_step("cargo", validators.name, "cargo"),
    field_step(
        "p_correo",
        "perfiles.correo",
        plain(validators.email),
        _save_email,
        _next,
        counted=False,
        current=_pending_email,
    ),
    _person_step("celular", validators.mobile, "phone", _finish_person, refuse=_refuse_phone),
)
