"""Opening a request: the officer's submission becomes a ticket, its Formato, its mail.

Opening a request is one transaction: the entity, the ticket, its first event, its files
(the resolution as received and the generated Formato), the mail to the help desk and the
staff's notice. The ticket's own rows are :mod:`bot.domain.records`.
"""

from __future__ import annotations

import asyncio
import json
from datetime import date, datetime
from typing import TYPE_CHECKING, Any

from bot import dates
from bot.desk.card import REVIEW_FLAG, post_new_ticket, review_addresses, tell_staff
from bot.domain import registry, workflow
from bot.domain.correction import changed_fields, replaced_files
from bot.domain.records import (
    EXTENSIONS,
    MIMES,
    TERM_DAYS,
    XLSX,
    add_file,
    create_ticket,
    upsert_entity,
)
from bot.domain.ticket_types import KINDS, TicketType
from bot.domain.types import Submitted
from bot.mail.smtp import Attachment
from bot.store.database import Tx
from conversations.events import Document, Outbound, rows
from conversations.profiles import assignments

if TYPE_CHECKING:
    from bot.domain.formato import Person
    from bot.domain.types import Context, Who

ACCESS, CONSULTATION = KINDS[TicketType.ACCESS], KINDS[TicketType.CONSULTATION]
PROFILES = KINDS[TicketType.PROFILES]


def _person(data: dict[str, Any]) -> Person:
    from bot.domain.formato import Person

    return Person(
        nombres=data["nombres"],
        apellidos=data["apellidos"],
        dni=data["dni"],
        cargo=data["cargo"],
        email=data["email"],
        phone=data["phone"],
    )


async def open_access_request(app: Context, tx: Tx, who: Who, data: dict[str, Any]) -> Submitted:
    number, ticket_id, due = await create_ticket(app.calendar, tx, who, ACCESS.type, data)
    document = await _request_files(app, tx, number, ticket_id, data, due, correction=None)
    await post_new_ticket(app, tx, number)
    return Submitted(number, due, TERM_DAYS, document)


async def resubmit_access_request(
    app: Context, tx: Tx, who: Who, ticket: workflow.Ticket, data: dict[str, Any]
) -> Submitted:
    """An observed request corrected by its officer: the same ticket with the new data, a
    new Formato, the files and mail again, and the ticket back to "En atención"."""
    clean = ACCESS.stored({k: v for k, v in data.items() if k != "ticket"})
    old, part = await tx.fetchone(
        "SELECT data, observed_part FROM tickets WHERE id = ?", (ticket.id,)
    )
    observed = await tx.fetchone(
        "SELECT message FROM ticket_events WHERE ticket_id = ? AND kind = 'estado'"
        " AND to_state = ? ORDER BY id DESC LIMIT 1",
        (ticket.id, workflow.OBSERVED),
    )
    fields = changed_fields(
        json.loads(old), clean, app.services.sections, lambda res: authority_text(app, res)
    )
    correction = {"part": part or "otro", "message": observed and observed[0], "fields": fields}
    entity_id = await upsert_entity(tx, clean["ruc"], clean["entity_name"])
    await tx.execute(
        "UPDATE tickets SET data = ?, entity_id = ?, entity_name = ?, updated_at = ? WHERE id = ?",
        (
            json.dumps(clean, ensure_ascii=False),
            entity_id,
            clean["entity_name"],
            tx.stamp,
            ticket.id,
        ),
    )
    changed = await workflow.change_state(
        app.calendar, tx, ticket.number, workflow.IN_PROGRESS, "officer", notify=False
    )
    document = await _request_files(
        app, tx, ticket.number, ticket.id, clean, changed.due, correction=correction
    )
    await tell_staff(
        app, tx, ticket, Outbound("mesa.subsanado", {"number": ticket.number}, rows(
            workflow.notice_choice("card", ticket.number, "btn.notice_card")))
    )  # fmt: skip
    return Submitted(ticket.number, changed.due, TERM_DAYS, document)


async def _request_files(
    app: Context,
    tx: Tx,
    number: str,
    ticket_id: int,
    data: dict[str, Any],
    due: date,
    *,
    correction: dict[str, Any] | None,
) -> Document:
    """The Formato built from the request, the resolution and the Formato attached to the
    ticket and mailed to the help desk (officer in CC); returns the Formato to send back.
    A ``correction`` (what was observed, the fields that changed) goes in the mail with the
    files it replaces."""
    # The Formato's module (and openpyxl, when it builds) on first use, not at start-up.
    from bot.domain.formato import FormatoData, ProfileRow, build_formato, formato_filename

    people = [data["resp"], *data.get("people", [])]
    flags = [REVIEW_FLAG] if any(p.get("review") for p in people) else []
    flags += await other_requests(app, tx, data["ruc"], ticket_id)
    sections = app.services.sections
    formato = FormatoData(
        ticket_number=number,
        entity_name=data["entity_name"],
        ruc=data["ruc"],
        responsible=_person(data["resp"]),
        resolution_number=data["res"]["numero"],
        resolution_date=date.fromisoformat(data["res"]["fecha"]),
        resolution_authority=authority_text(app, data["res"]),
        profiles=[
            ProfileRow(section.code, section.name, _person(person))
            for section, person in assignments(data, sections)
            if person is not None
        ],
        generated_at=tx.now,
        justice_system=data.get("justicia") if isinstance(data.get("justicia"), bool) else None,
    )
    workbook = build_formato(formato)
    stored = await asyncio.to_thread(app.files.put, workbook)
    await add_file(tx, stored.sha256, stored.size, XLSX, "xlsx")
    formato_name = formato_filename(number, data["ruc"])
    await tx.execute("UPDATE tickets SET flags = ? WHERE id = ?", (json.dumps(flags), ticket_id))
    pdf = data["res"]["pdf"]
    version = ""
    if correction is not None:
        (count,) = await tx.fetchone(
            "SELECT count(*) FROM ticket_files WHERE ticket_id = ? AND role = 'formato'",
            (ticket_id,),
        )
        version = f"_v{count + 1}"
        formato_name = formato_name.replace(".xlsx", f"{version}.xlsx")
    pdf_name = f"Resolucion_{number}{version}.pdf"
    if correction is not None:
        correction["files"] = await replaced_files(
            tx, ticket_id,
            {"resolucion": (pdf["sha256"], pdf_name), "formato": (stored.sha256, formato_name)},
        )  # fmt: skip
    await tx.execute(
        "INSERT OR IGNORE INTO ticket_files (ticket_id, sha256, role, filename)"
        " VALUES (?, ?, ?, ?), (?, ?, ?, ?)",
        (ticket_id, pdf["sha256"], "resolucion", pdf_name,
         ticket_id, stored.sha256, "formato", formato_name),
    )  # fmt: skip
    body = app.texts.plain(
        f"mail.{ACCESS.mail}_body",
        {
            "number": number,
            "entity": data["entity_name"],
            "ruc": data["ruc"],
            "resp": data["resp"],
            "res": data["res"],
            "authority": authority_text(app, data["res"]),
            "justicia": data.get("justicia"),  # None: a request sent before the question
            "rows": [{"section": s.name, "person": p} for s, p in assignments(data, sections)],
            "due": due,
            "flags": [f for f in flags if f != REVIEW_FLAG],  # the addresses say it
            "review": review_addresses(people),
            "correction": correction,
        },
    )
    resolution = await asyncio.to_thread(app.files.read, pdf["sha256"])
    subject = f"mail.{ACCESS.mail}_subject" if correction is None else "mail.correction_subject"
    await app.mail.enqueue(
        tx,
        kind=ACCESS.mail,
        to=[app.settings.helpdesk_email],
        cc=[data["resp"]["email"]],
        subject=app.texts.plain(subject, {"entity": data["entity_name"], "number": number}),
        body=body,
        attachments=[
            Attachment(pdf_name, resolution, "application/pdf"),
            Attachment(formato_name, workbook, XLSX),
        ],
        ticket_id=ticket_id,
    )
    return Document(stored.sha256, formato_name, XLSX)


OPEN_OR_ATTENDED = (
    workflow.REGISTERED,
    workflow.IN_PROGRESS,
    workflow.OBSERVED,
    workflow.ATTENDED,
    workflow.CLOSED,
)


async def other_requests(app: Context, tx: Tx, ruc: str, ticket_id: int) -> list[str]:
    """Alerts naming the RUC's other access requests that are open or were attended ("ya
    existe PTE-… (Atendido el …)"): a new one is allowed, the desk is told."""
    found = await tx.fetchall(
        "SELECT t.number, t.state, t.registered_at, t.attended_at FROM tickets t"
        " JOIN entities e ON e.id = t.entity_id WHERE e.ruc = ? AND t.type = ?"
        " AND t.id != ? AND t.state IN (?, ?, ?, ?, ?) ORDER BY t.id",
        (ruc, TicketType.ACCESS, ticket_id, *OPEN_OR_ATTENDED),
    )
    alerts = []
    for number, state, registered, attended in found:
        data = {
            "number": number,
            "state": state,
            "registered": dates.lima_date(datetime.fromisoformat(registered)),
            "attended": dates.lima_date(datetime.fromisoformat(attended)) if attended else None,
        }
        alerts.append(app.texts.plain("mesa.ya_existe", data))
    return alerts


def authority_text(app: Context, res: dict[str, Any]) -> str:
    if res.get("autoridad_texto"):
        return str(res["autoridad_texto"])
    return app.texts.label(f"btn.authority_{res['autoridad']}", {})


async def open_consultation(app: Context, tx: Tx, who: Who, data: dict[str, Any]) -> Submitted:
    resp = data["resp"]
    flags = [REVIEW_FLAG] if resp.get("review") else []
    number, ticket_id, due = await create_ticket(
        app.calendar, tx, who, CONSULTATION.type, data, flags
    )
    attachments = []
    listed = []  # each file's name in the mail, with the words the officer sent with it
    for index, file in enumerate(data.get("files", []), start=1):
        name = f"Adjunto_{index:02d}_{number}.{EXTENSIONS.get(file['kind'], 'bin')}"
        await tx.execute(
            "INSERT OR IGNORE INTO ticket_files (ticket_id, sha256, role, filename)"
            " VALUES (?, ?, 'adjunto', ?)",
            (ticket_id, file["sha256"], name),
        )
        content = await asyncio.to_thread(app.files.read, file["sha256"])
        attachments.append(Attachment(name, content, MIMES.get(file["kind"], "application/pdf")))
        listed.append({"name": name, "caption": file.get("caption")})
    body = app.texts.plain(
        f"mail.{CONSULTATION.mail}_body",
        {
            "number": number,
            "entity": data["entity_name"],
            "ruc": data["ruc"],
            "section": data["section_name"],
            "description": data["description"],
            "count": len(attachments),
            "files": listed,
            "due": due,
            "resp": resp,
            "review": review_addresses([resp]),
        },
    )
    await app.mail.enqueue(
        tx,
        kind=CONSULTATION.mail,
        to=[app.settings.helpdesk_email],
        cc=[resp["email"]],
        subject=app.texts.plain(
            f"mail.{CONSULTATION.mail}_subject", {"entity": data["entity_name"], "number": number}
        ),
        body=body,
        attachments=attachments,
        ticket_id=ticket_id,
    )
    await post_new_ticket(app, tx, number)
    return Submitted(number, due, TERM_DAYS, None)


async def open_profile_update(app: Context, tx: Tx, who: Who, data: dict[str, Any]) -> Submitted:
    """A ticket of type perfiles with the Formato of the registry after the change: the first
    request plus every attended change, then this one (rows it removes marked "dar de baja")."""
    from bot.domain.formato import FormatoData, ProfileRow, build_formato, formato_filename

    row = await tx.fetchone("SELECT data FROM tickets WHERE number = ?", (data["base"],))
    base = json.loads(row[0])
    sections = app.services.sections
    before = await registry.current(tx, data["base"], sections)
    applied = registry.apply(before, data, sections)
    flags = [REVIEW_FLAG] if data.get("person", {}).get("review") else []
    number, ticket_id, due = await create_ticket(app.calendar, tx, who, PROFILES.type, data, flags)
    profiles = [
        ProfileRow(r.section.code, r.section.name, _person(r.person), r.mark) for r in applied.rows
    ]
    res = base["res"]
    formato = FormatoData(
        ticket_number=number,
        entity_name=data["entity_name"],
        ruc=data["ruc"],
        responsible=_person(base["resp"]),
        resolution_number=res["numero"],
        resolution_date=date.fromisoformat(res["fecha"]),
        resolution_authority=authority_text(app, res),
        profiles=profiles,
        generated_at=tx.now,
        justice_system=base.get("justicia") if isinstance(base.get("justicia"), bool) else None,
    )
    workbook = build_formato(formato)
    stored = await asyncio.to_thread(app.files.put, workbook)
    await add_file(tx, stored.sha256, stored.size, XLSX, "xlsx")
    name = formato_filename(number, data["ruc"])
    await tx.execute(
        "INSERT INTO ticket_files (ticket_id, sha256, role, filename) VALUES (?, ?, 'formato', ?)",
        (ticket_id, stored.sha256, name),
    )
    names = {s.code: s.name for s in sections}
    await app.mail.enqueue(
        tx,
        kind=PROFILES.mail,
        to=[app.settings.helpdesk_email],
        cc=[base["resp"]["email"]],
        subject=app.texts.plain(
            f"mail.{PROFILES.mail}_subject", {"entity": data["entity_name"], "number": number}
        ),
        body=app.texts.plain(
            f"mail.{PROFILES.mail}_body",
            {
                "number": number,
                "base": data["base"],
                "entity": data["entity_name"],
                "ruc": data["ruc"],
                "resp": base["resp"],
                "sections": [names[c] for c in data["sections"]],
                "action": data["action"],
                "person": data.get("person"),
                "changes": registry.changes_view(applied),
                "review": review_addresses([data.get("person") or {}]),
                "reason": data["reason"],
                "due": due,
            },
        ),
        attachments=[Attachment(name, workbook, XLSX)],
        ticket_id=ticket_id,
    )
    await post_new_ticket(app, tx, number)
    return Submitted(number, due, TERM_DAYS, Document(stored.sha256, name, XLSX))
