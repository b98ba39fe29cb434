"""Every template renders with sample data, and user values are escaped."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import date
from typing import Any

import jinja2
import pytest
from jinja2 import meta

from bot.texts import SHORT_SUFFIX, Texts, to_plain

NASTY = "Pérez <Ruiz> & Cía"
TELEGRAM_TAGS = {"b", "i", "u", "s", "a", "code", "pre", "blockquote"}

# Sample values by variable name; anything not listed gets NASTY.
PERSON = {
    "nombres": NASTY,
    "apellidos": NASTY,
    "dni": "01234567",
    "cargo": NASTY,
    "email": "ana@munisjl.gob.pe",
    "phone": "+51987654321",
}
SAMPLES: dict[str, Any] = {
    "from_state": "observado",  # a state is a code; its name comes from estado.state_<code>
    "to_state": "en_atencion",
    "k": 3,
    "n": 16,
    "i": 2,
    "left": 3,
    "seconds": 42,
    "minutes": 10,
    "days": 5,
    "due": date(2026, 12, 11),
    "resp": PERSON,
    "res": {"numero": NASTY, "fecha": "2026-10-01", "pdf": {"pages": 2}, "autoridad": "alcalde"},
    "rows": [
        {"section": "Datos generales", "person": PERSON, "me": True},
        {"section": NASTY, "person": PERSON, "me": False},
        {"section": "Información focalizada", "person": None, "me": False},
    ],
    "flags": ["dominio por revisar"],
    "sent": {"pages": 1},
    "usual": {"name": NASTY, "ruc": "20131312955"},
    "max": 10,
    "files": [{"name": NASTY}],
    "consents": [{"version": "2026-11", "accepted": True, "at": "2026-12-02T15:00:00+00:00"}],
    "emails": ["ana@munisjl.gob.pe"],
    "tickets": [{"number": "PTE-2026-000001", "type": "accesos", "state": "registrado"}],
    "open_tickets": ["PTE-2026-000001"],
    "has_draft": True,
    "typed": True,
    "share": True,
    "channel": "telegram",
    "items": [
        {
            "number": "PTE-2026-000001",
            "type": "accesos",
            "state": "registrado",
            "due": "2026-12-11",
            "left": -2,
            "entity": NASTY,
            "overdue": True,
            "done": False,
            "taken": False,
        },
        {
            "number": "PTE-2026-000002",
            "type": "consulta",
            "state": "observado",
            "due": "2026-12-14",
            "left": 3,
            "entity": NASTY,
            "overdue": False,
            "done": False,
            "taken": True,
        },
        {
            "number": "PTE-2026-000003",
            "type": "perfiles",
            "state": "atendido",
            "due": "2026-12-14",
            "left": 3,
            "entity": NASTY,
            "overdue": False,
            "done": True,
            "taken": True,
        },
    ],
    "action": "reemplazar",
    "person": PERSON,
    "reason": NASTY,
    "base": "PTE-2026-000001",
    "on": True,
    "type": "accesos",
    "state": "en_atencion",
    "registered_at": "2026-12-02T15:00:00+00:00",
    "days_left": 4,
    "overdue": False,
    "open": True,
    "attachments": 3,
    "paused_days_left": 2,
    "count": 2,
    "history": [
        {
            "at": "2026-12-02T15:00:00+00:00",
            "state": "registrado",
            "message": None,
            "kind": "estado",
            "actor": "officer",
            "who": "",
        },
        {
            "at": "2026-12-03T15:00:00+00:00",
            "state": "observado",
            "message": NASTY,
            "kind": "estado",
            "actor": "staff",
            "who": NASTY,
        },
        {
            "at": "2026-12-03T16:00:00+00:00",
            "state": "observado",
            "message": NASTY,
            "kind": "staff",
            "actor": "staff",
            "who": NASTY,
        },
        {
            "at": "2026-12-04T16:00:00+00:00",
            "state": "observado",
            "message": NASTY,
            "kind": "oficial",
            "actor": "officer",
            "who": "",
        },
        {
            "at": "2026-12-10T16:00:00+00:00",
            "state": "cerrado",
            "message": None,
            "kind": "estado",
            "actor": "system",
            "who": "",
        },
    ],
    "drafts": [
        {"k": 7, "n": 15, "flow": "solicitud", "label": "menu.solicitud"},
        {"k": 2, "n": 5, "flow": "consulta", "label": "menu.consulta"},
    ],
    "flow": "perfiles",
    "sections": ["Datos generales", NASTY],
    "flows": ["requisitos", "ayuda"],
    "commands": ["start", "menu", "perfiles"],
    "album": False,
    "file_count": 2,
    "staff_commands": ["pendientes"],
    "consented": True,
    "since": "2026-12-03T15:00:00+00:00",
    "part": "resolucion",
    "observed": True,
    "resumed": True,
    "ticket": "PTE-2026-000001",
    "total": 25,
    "taken": True,
    "taken_by": NASTY,
    "mine": False,
    "paused": 3,
    "profiles": [
        {"section": "Datos generales", "person": PERSON},
        {"section": NASTY, "person": None},
    ],
    "consulta": {"section_name": NASTY, "description": NASTY * 100},
    "update": {"action": "reemplazar", "person": PERSON, "reason": NASTY},
    "update_sections": ["Datos generales", NASTY],
    "undelivered": 2,
    "undelivered_reason": "blocked: Forbidden: bot was blocked by the user",
    "today": date(2026, 12, 3),
    "t": {
        "number": "PTE-2026-000001",
        "type": "accesos",
        "state": "en_atencion",
        "due": "2026-12-11",
        "left": 0,
        "entity": NASTY,
        "overdue": False,
        "done": False,
        "taken": True,
    },
    "done": False,
    "known": PERSON,
    "registered": date(2026, 12, 2),
    "attended": date(2026, 12, 3),
}
SAMPLES["review"] = [{"email": "ana@consultora.pe", "name": NASTY}]
SAMPLES["changes"] = [
    {"section": NASTY, "removed": [PERSON, PERSON], "added": PERSON},
    {"section": "Presupuesto", "removed": [], "added": PERSON},
    {"section": "Personal", "removed": [PERSON], "added": None},
]
SAMPLES["c"] = {  # a field of a correction, or a section of a profile change
    "field": "perfil",
    "section": NASTY,
    "before": NASTY,
    "after": None,
    "removed": [PERSON],
    "added": PERSON,
}
SAMPLES["correction"] = {
    "part": "resolucion",
    "message": NASTY,
    "fields": [SAMPLES["c"], {"field": "res_numero", "section": "", "before": "1", "after": "2"}],
    "files": [{"role": "formato", "before": "Formato_v1.xlsx", "after": "Formato_v2.xlsx"}],
}
SAMPLES["holders"] = [
    {"section": "Presupuesto", "code": "presupuesto", "people": [PERSON, PERSON], "touched": True},
    {"section": NASTY, "code": "personal", "people": [], "touched": False},
]
SAMPLES["refused"] = [  # attachments of a desk mail not forwarded (correo.toml)
    {"name": NASTY, "refusal": "pdf_encrypted"},
    {"name": NASTY, "refusal": "too_many"},
]
SAMPLES["mail_counts"] = [  # pte-bot staff mail (correo.toml)
    {"outcome": "relayed", "reason": "", "count": 3},
    {"outcome": "review", "reason": "no_ticket", "count": 2},
]
SAMPLES["page"] = 2  # whatsapp.more_body: a page of a long list
SAMPLES["pages"] = 3
SAMPLES["tomorrow"] = SAMPLES["items"]
SAMPLES["late"] = SAMPLES["items"]

TEXTS = Texts(helpdesk="mesadeayuda@gobiernodigital.gob.pe")


def sample_for(key: str) -> dict[str, Any]:
    """Sample values for the template's variables and those of the templates it includes
    by a fixed name (which read the including template's variables)."""
    names: set[str] = set()
    pending, seen = [key], set()
    while pending:
        current = pending.pop()
        seen.add(current)
        parsed = TEXTS.env.parse(TEXTS.sources[current])
        names |= meta.find_undeclared_variables(parsed)
        pending += [r for r in meta.find_referenced_templates(parsed) if r and r not in seen]
    return {name: SAMPLES.get(name, NASTY) for name in names if name not in TEXTS.env.globals}


@pytest.mark.parametrize("key", sorted(TEXTS.sources))
def test_template_renders_with_sample_data(key: str) -> None:
    html = TEXTS.render(key, sample_for(key))
    assert html.strip()
    assert len(to_plain(html)) <= 4096
    tags = set(re.findall(r"</?([a-z-]+)", html))
    assert tags <= TELEGRAM_TAGS, f"{key} uses tags Telegram does not accept: {tags}"
    if NASTY in sample_for(key).values() and key.endswith(SHORT_SUFFIX):
        assert "<R" not in html  # a short form keeps part of a value, escaped
    elif NASTY in sample_for(key).values():
        assert "Pérez &lt;Ruiz&gt; &amp; Cía" in html
        assert NASTY in to_plain(html)


def test_missing_variable_fails_loudly() -> None:
    with pytest.raises(jinja2.UndefinedError):
        TEXTS.render("common.unknown_command", {})


def test_fixed_button_labels_fit_whatsapp_lists() -> None:
    """Labels quoting user data (a name) are shortened by the channel; the rest must fit."""
    for key in TEXTS.sources:
        if key.startswith(("btn.", "menu.")) and key not in ("menu.main", "menu.hint"):
            if sample_for(key):
                continue
            assert len(TEXTS.label(key, {})) <= 24, key


def test_sections_come_from_the_data_file() -> None:
    codes = [section.code for section in TEXTS.sections]
    assert codes[0] == "datos_generales"
    assert "focalizada" in codes
    assert len(codes) == len(set(codes)) == 11
    # The portal's menu: "Participación ciudadana" between "Proyectos de inversión e
    # Infobras" and "Personal" (domain.md).
    names = [section.name for section in TEXTS.sections]
    at = names.index("Participación ciudadana")
    assert names[at - 1 : at + 2] == [
        "Proyectos de inversión e Infobras",
        "Participación ciudadana",
        "Personal",
    ]


def test_a_notice_queued_before_issue_16_still_renders() -> None:
    """Outbox rows outlive a deploy: a state notice without type and changes renders."""
    old = {"number": "PTE-2026-000001", "state": "atendido", "message": None, "part": None}
    assert "Los accesos se enviaron a tu correo institucional" in TEXTS.plain("aviso.estado", old)


def test_a_detail_and_a_card_queued_before_issue_16_still_render() -> None:
    detail = {"number": "PTE-2026-000001", "type": "accesos", "entity": NASTY, "ruc": "1",
              "state": "atendido", "registered_at": "2026-12-02T15:00:00+00:00", "open": False,
              "last_message": "x", "attachments": 1,
              "history": [{"at": "2026-12-02T15:00:00+00:00", "state": "registrado",
                           "message": None}]}  # fmt: skip
    assert "• 02/12/2026 10:00 — Registrado" in TEXTS.plain("estado.detail", detail)
    card = {k: v for k, v in sample_for("mesa.ficha").items() if k not in ("review", "holders")}
    assert "Historial" in TEXTS.plain("mesa.ficha", card)


# --- Every template, every variant: counts 0, 1, 2, each ticket type, each channel -------
from bot.channels.telegram_transport import CAPABILITIES as TELEGRAM  # noqa: E402
from bot.channels.terminal import CAPABILITIES as TERMINAL  # noqa: E402
from bot.channels.whatsapp import CAPABILITIES as WHATSAPP  # noqa: E402

CHANNELS = {"telegram": TELEGRAM, "whatsapp": WHATSAPP, "terminal": TERMINAL}
TYPES = ("accesos", "consulta", "perfiles")
STATES = ("registrado", "en_atencion", "observado", "atendido", "cerrado", "anulado")
QUESTION_LIMIT = 300  # characters of a question (locales/es/README.md)
HACKS = ("(s)", "(es)", "(a)", "(as)", "(os)", "(sa)")


def _with_count(value: Any, count: int) -> Any:
    """A sample with every number set to ``count`` and every list cut to ``count`` items."""
    if isinstance(value, bool):
        return value
    if isinstance(value, int):
        return -count if value < 0 else count
    if isinstance(value, list):
        items = value[:count] if len(value) >= count else value * count
        return [_with_count(item, count) for item in items[:count]]
    if isinstance(value, dict):
        return {k: _with_count(v, count) for k, v in value.items()}
    return value


def _with_type(value: Any, kind: str) -> Any:
    if isinstance(value, list):
        return [_with_type(item, kind) for item in value]
    if isinstance(value, dict):
        return {k: (kind if k == "type" else _with_type(v, kind)) for k, v in value.items()}
    return value


def variants(key: str) -> Iterator[tuple[str, dict[str, Any]]]:
    base = sample_for(key)
    states = STATES if "state" in base else (None,)
    for count in (0, 1, 2):
        for kind in TYPES:
            for state in states:
                data = _with_type(_with_count(base, count), kind)
                if state is not None:
                    data["state"] = state
                if "type" in base:
                    data["type"] = kind
                if "number" in base:  # a ticket's number, cut by short labels
                    data["number"] = "PTE-2026-000001"
                for name, capabilities in CHANNELS.items():
                    label = f"{key} count={count} type={kind} state={state} canal={name}"
                    yield label, {**data, "canal": capabilities.as_data()}


def _questions(text: str) -> list[str]:
    """Each question in a message: the line that holds a «¿…?»."""
    return [line for line in text.splitlines() if "¿" in line and "?" in line]


KEYS_SHOWN = re.compile(
    r"\b(?:" + "|".join(sorted({k.split(".")[0] for k in TEXTS.sources})) + r")\.[a-z_]+\b"
)


@pytest.mark.parametrize("key", sorted(TEXTS.sources))
def test_every_variant_reads_well(key: str) -> None:
    """No '(s)' plural hacks, no doubled spaces, no empty first or last line, questions
    that fit a phone screen, nothing left unrendered, user data escaped."""
    for label, data in variants(key):
        raw = TEXTS.template(key).render(data)
        plain = to_plain(raw)
        for hack in HACKS:
            assert hack not in plain.replace(NASTY, "X"), f"{label}: {hack!r} in {plain!r}"
        assert "  " not in plain, f"{label}: doubled space in {plain!r}"
        if not raw.strip():
            continue  # a part included by others, empty for this data
        lines = raw.strip(" ").split("\n")
        assert lines[0].strip(), f"{label}: starts with an empty line: {raw!r}"
        last = lines[:-1] if lines[-1] == "" and len(lines) > 1 else lines
        assert last[-1].strip(), f"{label}: ends with an empty line: {raw!r}"
        for question in _questions(plain):
            assert len(question) <= QUESTION_LIMIT, f"{label}: question of {len(question)}"
        assert "{{" not in plain, f"{label}: unrendered Jinja"
        assert "{%" not in plain, f"{label}: unrendered Jinja"
        shown = [k for k in KEYS_SHOWN.findall(plain) if k in TEXTS.sources]
        assert not shown, f"{label}: a template key shows: {shown}"
        if NASTY in str(data) and not key.endswith(SHORT_SUFFIX) and "<R" in raw:
            raise AssertionError(f"{label}: user data not escaped")


@pytest.mark.parametrize("kind", TYPES)
def test_a_notice_agrees_with_the_ticket_type(kind: str) -> None:
    data = {"number": "PTE-2026-000001", "type": kind, "message": None, "part": None}
    text = TEXTS.plain("aviso.estado", {**data, "state": "en_atencion"})
    noun, pronoun = {
        "accesos": ("tu solicitud de accesos", "la"),
        "consulta": ("tu consulta", "la"),
        "perfiles": ("tu cambio de perfiles", "lo"),
    }[kind]
    assert f"{noun} pasó a En atención — un especialista {pronoun} está revisando." in text


@pytest.mark.parametrize(
    ("count", "expected"),
    [(0, "Te quedan 0 intentos"), (1, "Te queda 1 intento:"), (4, "Te quedan 4 intentos")],
)
def test_counts_pick_the_singular_or_the_plural(count: int, expected: str) -> None:
    assert expected in TEXTS.plain("errors.code_wrong", {"left": count})


def test_the_password_warning_follows_what_the_channel_can_do() -> None:
    told = {
        name: TEXTS.plain("common.password_warning", {"canal": caps.as_data()})
        for name, caps in CHANNELS.items()
    }
    assert "Borré tu mensaje" in told["telegram"]
    for name in ("whatsapp", "terminal"):
        assert "Borré" not in told[name]
        assert "te pido que lo borres" in told[name]
    share = {
        name: TEXTS.plain("solicitud.celular", {"share": True, "canal": caps.as_data()})
        for name, caps in CHANNELS.items()
    }
    assert "Compartir mi número" in share["telegram"]
    assert "Compartir mi número" in share["whatsapp"]
    assert "Compartir mi número" not in share["terminal"]


def test_templates_choose_by_capability_not_by_channel_name() -> None:
    for key, source in TEXTS.sources.items():
        assert not re.search(r"channel\s*==|canal\s*==", source), key


def test_replies_queued_before_who_asks_and_the_justice_question_still_render() -> None:
    """Outbox rows outlive a deploy: a summary or a confirmation without the new data."""
    request = {k: v for k, v in sample_for("solicitud.resumen").items() if k != "justicia"}
    assert "Sistema de justicia" not in TEXTS.plain("solicitud.resumen", request)
    consulta = {k: v for k, v in sample_for("consulta.resumen").items() if k != "resp"}
    assert "Consulta de" not in TEXTS.plain("consulta.resumen", consulta)
    done = {k: v for k, v in sample_for("consulta.registrada").items() if k != "email"}
    assert "Te avisaré aquí" in TEXTS.plain("consulta.registrada", done)
