"""Every template renders with sample data, and user values are escaped."""

from __future__ import annotations

import re
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
    "tickets": [{"number": "PTE-2026-000001", "type": "accesos", "state": "Registrado"}],
    "open_tickets": ["PTE-2026-000001"],
    "has_draft": True,
    "typed": True,
    "share": True,
    "channel": "telegram",
    "items": [
        {
            "number": "PTE-2026-000001",
            "type": "accesos",
            "state": "Registrado",
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
            "state": "Observado",
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
            "state": "Atendido",
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
    "state": "En atención",
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
            "state": "Registrado",
            "message": None,
            "kind": "estado",
            "actor": "officer",
            "who": "",
        },
        {
            "at": "2026-12-03T15:00:00+00:00",
            "state": "Observado",
            "message": NASTY,
            "kind": "estado",
            "actor": "staff",
            "who": NASTY,
        },
        {
            "at": "2026-12-03T16:00:00+00:00",
            "state": "Observado",
            "message": NASTY,
            "kind": "staff",
            "actor": "staff",
            "who": NASTY,
        },
        {
            "at": "2026-12-04T16:00:00+00:00",
            "state": "Observado",
            "message": NASTY,
            "kind": "oficial",
            "actor": "officer",
            "who": "",
        },
        {
            "at": "2026-12-10T16:00:00+00:00",
            "state": "Cerrado",
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
        "state": "En atención",
        "due": "2026-12-11",
        "left": 0,
        "entity": NASTY,
        "overdue": False,
        "done": False,
        "taken": True,
    },
    "done": False,
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
    assert len(codes) == len(set(codes)) == 10


def test_a_notice_queued_before_issue_16_still_renders() -> None:
    """Outbox rows outlive a deploy: a state notice without type and changes renders."""
    old = {"number": "PTE-2026-000001", "state": "Atendido", "message": None, "part": None}
    assert "Los accesos se enviaron a tu correo institucional" in TEXTS.plain("aviso.estado", old)


def test_a_detail_and_a_card_queued_before_issue_16_still_render() -> None:
    detail = {"number": "PTE-2026-000001", "type": "accesos", "entity": NASTY, "ruc": "1",
              "state": "Atendido", "registered_at": "2026-12-02T15:00:00+00:00", "open": False,
              "last_message": "x", "attachments": 1,
              "history": [{"at": "2026-12-02T15:00:00+00:00", "state": "Registrado",
                           "message": None}]}  # fmt: skip
    assert "• 02/12/2026 10:00 — Registrado" in TEXTS.plain("estado.detail", detail)
    card = {k: v for k, v in sample_for("mesa.ficha").items() if k not in ("review", "holders")}
    assert "Historial" in TEXTS.plain("mesa.ficha", card)
