"""What an officer's correction (subsanación) of an observed access request changed.

The help desk reads it in the Subsanación mail: what it observed, then every field whose
value changed (before → after) and which files the correction replaced. Values are given
as people read them (dates dd/mm/aaaa, a person as name, DNI and contact); field names are
the template keys ``mail.campo.<field>``.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from datetime import date
from typing import Any

from bot import dates
from bot.store.database import Tx
from bot.texts import Section
from conversations.profiles import assignments

PERSON_FIELDS = ("nombres", "apellidos", "dni", "cargo", "email", "phone")
_VERSION = re.compile(r"_v(\d+)\.[A-Za-z0-9]+$")


def holder_text(person: Mapping[str, Any] | None) -> str | None:
    """Who holds a section: name and DNI (None: nobody)."""
    if not person:
        return None
    name = f"{person.get('nombres', '')} {person.get('apellidos', '')}".strip()
    return f"{name} (DNI {person.get('dni', '')})"


def person_text(person: Mapping[str, Any]) -> str:
    """A colleague in full: name, DNI, cargo, email, mobile."""
    name = f"{person.get('nombres', '')} {person.get('apellidos', '')}".strip()
    details = " · ".join(str(person.get(k, "")) for k in ("dni", "cargo", "email", "phone"))
    return f"{name} (DNI {details})"


def changed_fields(
    old: Mapping[str, Any],
    new: Mapping[str, Any],
    sections: Sequence[Section],
    authority: Callable[[dict[str, Any]], str],
) -> list[dict[str, Any]]:
    """``[{"field", "section", "before", "after"}]`` for every value that differs, in the
    order of the form. ``before``/``after`` of a section without a person are None."""
    found: list[dict[str, Any]] = []

    def compare(field: str, before: Any, after: Any, section: str = "") -> None:
        if before != after:
            found.append({"field": field, "section": section, "before": before, "after": after})

    compare("ruc", old.get("ruc"), new.get("ruc"))
    compare("entity_name", old.get("entity_name"), new.get("entity_name"))
    old_resp, new_resp = old.get("resp", {}), new.get("resp", {})
    for key in PERSON_FIELDS:
        compare(f"resp_{key}", old_resp.get(key), new_resp.get(key))
    old_res, new_res = dict(old.get("res", {})), dict(new.get("res", {}))
    compare("res_numero", old_res.get("numero"), new_res.get("numero"))
    compare("res_fecha", _date(old_res.get("fecha")), _date(new_res.get("fecha")))
    compare("res_autoridad", authority(old_res), authority(new_res))
    before = dict(assignments(dict(old), sections))
    for section, person in assignments(dict(new), sections):
        compare("perfil", holder_text(before.get(section)), holder_text(person), section.name)
    # A colleague who stays (same DNI) with other details; the responsible's are above.
    earlier = {p.get("dni"): p for p in old.get("people", [])}
    for person in new.get("people", []):
        kept = earlier.get(person.get("dni"))
        if kept is not None and person.get("dni") != new_resp.get("dni"):
            name = f"{person.get('nombres', '')} {person.get('apellidos', '')}".strip()
            compare("persona", person_text(kept), person_text(person), name)
    return found


async def replaced_files(
    tx: Tx, ticket_id: int, new: Mapping[str, tuple[str, str]]
) -> list[dict[str, str]]:
    """``new`` maps a file role (resolucion, formato) to ``(sha256, name)`` of the file the
    correction attaches; the result names each file it replaces (a resolution sent again
    byte for byte replaces nothing)."""
    found: list[dict[str, str]] = []
    for role, (sha256, name) in new.items():
        rows = await tx.fetchall(
            "SELECT sha256, filename FROM ticket_files WHERE ticket_id = ? AND role = ?",
            (ticket_id, role),
        )
        if not rows:
            continue
        old_sha, old_name = max(rows, key=lambda row: version_of(row[1]))
        if old_sha != sha256:
            found.append({"role": role, "before": old_name, "after": name})
    return found


def version_of(filename: str) -> int:
    """``Formato_…_v3.xlsx`` → 3; a name without ``_vN`` is the first version."""
    found = _VERSION.search(filename)
    return int(found.group(1)) if found else 1


def _date(value: Any) -> str | None:
    return dates.short_date(date.fromisoformat(value)) if isinstance(value, str) else None
