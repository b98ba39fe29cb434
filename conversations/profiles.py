"""The profiles part of a request: who is in charge of each PTE section.

First "¿Una sola persona para todas las secciones?" (Yo / Otra persona / Definir por
sección). Section by section, the buttons offer "Yo", every person already named, and
"Otra persona", which asks that person's data (same checks as the responsible's).
Assignments are kept as ``profiles[section_code] = "me" | "p<i>" | "none"``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from conversations import validators
from conversations.events import Choice, Inbound, Kind, Outbound, rows
from conversations.flow import Again, Ctx, Next, Outcome, Step
from conversations.steps import ask, field_step, plain, put

START = "perfiles_modo"
# What the profiles part keeps for itself; going back restores it as it was (see Flow).
UNDO_KEYS = frozenset({"mode", "people", "profiles", "section_index", "pending"})
ME, OTHER, BY_SECTION, NONE = "me", "other", "sections", "none"
NAME_PARTS = ("nombres", "apellidos")


def assignments(data: dict[str, Any], sections: Sequence[Any]) -> list[tuple[Any, Any]]:
    """(section, person data or None) for every section, in the data file's order."""
    chosen = data.get("profiles", {})
    people = data.get("people", [])
    result = []
    for section in sections:
        ref = chosen.get(section.code, NONE)
        if ref == ME:
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


# ---------------------------------------------------------------- mode
async def answer_mode(ctx: Ctx, event: Inbound) -> Outcome:
    if event.kind is not Kind.BUTTON or event.text not in (ME, OTHER, BY_SECTION):
        return Again("errors.use_buttons")
    ctx.data.update(mode=event.text, people=[], profiles={}, section_index=0)
    if event.text == ME:
        ctx.data["profiles"] = {s.code: ME for s in ctx.services.sections}
        return Next("resumen")
    if event.text == OTHER:
        ctx.data["pending"] = {}
        return Next("p_nombres")
    return Next("perfil_seccion")


# -------------------------------------------------------- section by section
def _section(ctx: Ctx) -> Any:
    return ctx.services.sections[ctx.data.get("section_index", 0)]


async def ask_section(ctx: Ctx) -> list[Outbound]:
    section = _section(ctx)
    buttons = [Choice(ME, "btn.me")]
    for i, person in enumerate(ctx.data.get("people", [])):
        names = {"name": _full_name(person), **{k: person.get(k, "") for k in NAME_PARTS}}
        buttons.append(Choice(f"p{i}", "btn.person", names))  # its short form for buttons
    buttons.append(Choice(OTHER, "btn.other_person"))
    if section.note:
        buttons.append(Choice(NONE, "btn.not_applicable"))
    data = {
        "section": section.name,
        "note": section.note,
        "i": ctx.data.get("section_index", 0) + 1,
        "n": len(ctx.services.sections),
    }
    return [Outbound("perfiles.seccion", data, rows(*buttons), ctx.progress)]


async def answer_section(ctx: Ctx, event: Inbound) -> Outcome:
    if event.kind is not Kind.BUTTON:
        return Again("errors.use_buttons")
    choice = event.text
    people = ctx.data.get("people", [])
    if choice == OTHER:
        ctx.data["pending"] = {}
        return Next("p_nombres")
    valid = {ME, NONE} | {f"p{i}" for i in range(len(people))}
    if choice not in valid or (choice == NONE and not _section(ctx).note):
        return Again("errors.use_buttons")
    return _assign(ctx, choice)


def _assign(ctx: Ctx, ref: str) -> Outcome:
    sections = ctx.services.sections
    if ctx.data.get("mode") == OTHER:
        ctx.data["profiles"] = {s.code: ref for s in sections}
        return Next("resumen")
    ctx.data.setdefault("profiles", {})[_section(ctx).code] = ref
    following = ctx.data.get("section_index", 0) + 1
    if following >= len(sections):
        return Next("resumen")
    ctx.data["section_index"] = following
    return Next("perfil_seccion", [])


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


def _full_name(person: dict[str, Any]) -> str:
    return f"{person.get('nombres', '')} {person.get('apellidos', '')}".strip()


def _person_step(name: str, validate: Any, field: str, route: Any = _next) -> Step:
    return field_step(
        f"p_{name}", f"perfiles.{name}", plain(validate), put("pending", field), route,
        counted=False,
    )  # fmt: skip


STEPS: tuple[Step, ...] = (
    Step(
        START,
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
    _person_step("dni", validators.dni, "dni"),
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
    _person_step("celular", validators.mobile, "phone", _finish_person),
)
