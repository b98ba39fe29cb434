"""The help desk's work on tickets, from the chat or the shell: queue, card, actions.

Every action re-reads the ticket inside the caller's transaction and goes through
:mod:`bot.domain.workflow`, so a stale card (a colleague moved the ticket meanwhile) cannot make
an invalid change. Callers check that the actor is staff; these functions trust them.
Messages to the officer and to staff are outbox rows written in the same transaction.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from typing import TYPE_CHECKING, Any

from bot import dates
from bot.delivery.payload import encode
from bot.desk.staff_mail import mail_notice
from bot.domain import registry, workflow
from bot.domain.correction import version_of
from bot.domain.records import EXTENSIONS, MIMES
from bot.domain.ticket_types import TicketType, kind_of
from bot.domain.workflow import (
    ATTENDED,
    CANCELLED,
    CLOSED,
    IN_PROGRESS,
    OBSERVED,
    REGISTERED,
    Ticket,
    TransitionError,
    notice_choice,
)
from bot.store.database import OutboxRow, Tx
from conversations.events import Document, Outbound, rows
from conversations.profiles import assignments

if TYPE_CHECKING:
    from bot.domain.types import Context

OPEN_STATES = (REGISTERED, IN_PROGRESS, OBSERVED)
DONE_STATES = (ATTENDED, CLOSED, CANCELLED)  # no clock any more: the queue shows no days left
EMAIL = "email"  # the "channel" of a specialist who works the ticket by mail
REVIEW_FLAG = "dominio por revisar"  # an institutional email on an unusual domain
QUEUE_LIMIT = 20
HISTORY_SHOWN = 8
# Which parts an observation can name, by ticket type (see bot.domain.ticket_types).


@dataclass(frozen=True)
class Actor:
    """Who acts on a ticket: a staff member's chat, or the officer."""

    channel: str
    chat_id: str

    @property
    def tag(self) -> str:
        return f"staff:{self.channel}:{self.chat_id}"


def staff_name(app: Context, chat_id: str) -> str:
    """A staff member's display name (``PTEBOT_STAFF_NAMES``), else their chat id."""
    return app.settings.staff_names.get(chat_id, chat_id)


def actor_name(app: Context, actor: str) -> str:
    """Who an event's actor tag names: a specialist's name, or "" for officer and system.

    Tags are ``staff:<channel>:<chat id>``, ``staff:shell:<--by>``, ``officer``, ``system``.
    """
    kind, _, rest = actor.partition(":")
    if kind != "staff":
        return ""
    channel, _, chat = rest.partition(":")
    if channel == "shell":
        return chat or "shell"
    return staff_name(app, chat or channel)


# ------------------------------------------------------------------ reading
async def queue(app: Context, tx: Tx, limit: int = QUEUE_LIMIT) -> list[dict[str, Any]]:
    """Open tickets, overdue first then by due date; Observado ones wait on the officer."""
    found = await tx.fetchall(
        "SELECT t.number, t.type, t.state, t.due_on, t.paused_days_left, t.entity_name,"
        " t.assignee_chat FROM tickets t LEFT JOIN entities e ON e.id = t.entity_id"
        " WHERE t.state IN (?, ?, ?) ORDER BY t.state = ?, t.due_on, t.id LIMIT ?",
        (*OPEN_STATES, OBSERVED, limit),
    )
    return [item(app, tx, row) for row in found]


async def count_open(tx: Tx) -> int:
    (count,) = await tx.fetchone(
        "SELECT count(*) FROM tickets WHERE state IN (?, ?, ?)", OPEN_STATES
    )
    return int(count)


async def search(
    app: Context, tx: Tx, text: str, limit: int = QUEUE_LIMIT
) -> list[dict[str, Any]]:
    """Tickets of an entity by RUC (exact) or by a part of its name, newest first."""
    wanted = text.strip()
    if wanted.isdigit():
        where, param = "e.ruc = ?", wanted
    else:
        escaped = wanted.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        where, param = "t.entity_name LIKE ? ESCAPE '\\'", f"%{escaped}%"
    found = await tx.fetchall(
        "SELECT t.number, t.type, t.state, t.due_on, t.paused_days_left, t.entity_name,"
        " t.assignee_chat FROM tickets t JOIN entities e ON e.id = t.entity_id"
        f" WHERE {where} ORDER BY t.id DESC LIMIT ?",
        (param, limit),
    )
    return [item(app, tx, row) for row in found]


def item(app: Context, tx: Tx, row: Any) -> dict[str, Any]:
    number, kind, state, due_on, paused, entity, assignee = row
    today = dates.lima_date(tx.now)
    due = date.fromisoformat(due_on)
    return {
        "number": number,
        "type": kind,
        "state": state,
        "due": due_on,
        "left": app.calendar.business_days_between(today, due),
        "overdue": due < today and state in (REGISTERED, IN_PROGRESS),
        "done": state in DONE_STATES,
        "paused": paused,
        "entity": entity or "",
        "taken": assignee is not None,
    }


async def card(app: Context, tx: Tx, number: str, viewer: Actor | None) -> dict[str, Any] | None:
    """Everything a specialist needs to work the ticket, and the actions that apply now."""
    row = await tx.fetchone(
        "SELECT t.id, t.type, t.state, t.registered_at, t.due_on, t.paused_days_left, t.flags,"
        " t.data, t.observed_part, t.assignee_channel, t.assignee_chat, t.entity_name, e.ruc,"
        " t.desk_number FROM tickets t LEFT JOIN entities e ON e.id = t.entity_id"
        " WHERE t.number = ?",
        (number,),
    )
    if row is None:
        return None
    (ticket_id, kind, state, registered, due_on, paused, flags, raw, part,
     a_channel, a_chat, entity, ruc, desk_number) = row  # fmt: skip
    data = json.loads(raw)
    events = await tx.fetchall(
        "SELECT at, actor, from_state, to_state, message, kind FROM ticket_events"
        " WHERE ticket_id = ? ORDER BY id DESC LIMIT ?",
        (ticket_id, HISTORY_SHOWN),
    )
    files = await tx.fetchall(
        "SELECT filename FROM ticket_files WHERE ticket_id = ? ORDER BY role, filename",
        (ticket_id,),
    )
    failed = await tx.fetchall(
        "SELECT o.last_error FROM outbox o JOIN tickets t ON t.id = o.ticket_id"
        " JOIN chat_identities ci ON ci.id = t.identity_id"
        " WHERE o.ticket_id = ? AND o.state = 'failed' AND o.channel = ci.channel"
        " AND o.chat_id = ci.external_id ORDER BY o.id",
        (ticket_id,),
    )
    shown_flags, review = flag_lines(json.loads(flags), people_of(data))
    today = dates.lima_date(tx.now)
    due = date.fromisoformat(due_on)
    mine = viewer is not None and (a_channel, a_chat) == (viewer.channel, viewer.chat_id)
    sections = app.services.sections
    holders: list[dict[str, Any]] = []
    section = kind_of(kind).card_section
    if kind == TicketType.PROFILES:  # who holds each section now (with this change once attended)
        now = await registry.current(tx, data.get("base", ""), sections)
        holders = registry.holders(now, sections)
        for row in holders:
            row["touched"] = row["code"] in data.get("sections", [])
    return {
        "number": number,
        "type": kind,
        "state": state,
        "entity": entity,
        "ruc": ruc,
        "desk_number": desk_number,  # the desk's own ticketing system's number, if known
        "registered_at": registered,
        "due": due_on,
        "left": app.calendar.business_days_between(today, due),
        "overdue": due < today and state in (REGISTERED, IN_PROGRESS),
        "paused": paused,
        "flags": shown_flags,
        "review": review,
        "part": part,
        "taken": a_chat is not None,
        "taken_by": staff_name(app, a_chat) if a_chat is not None else None,
        "mine": mine,
        "resp": data.get("resp"),
        "res": data.get("res"),
        "profiles": [
            {"section": s.name, "person": p}
            for s, p in assignments(data, sections)
            if section == "profiles"
        ],
        "consulta": data if section == "consulta" else None,
        "update": data if section == "update" else None,
        "update_sections": [s.name for s in sections if s.code in data.get("sections", [])],
        "holders": holders,
        "files": [name for (name,) in files],
        "undelivered": len(failed),
        "undelivered_reason": failed[-1][0] if failed else None,
        "history": [_event(app, e) for e in reversed(events)],
        "actions": actions(state, mine),
    }


def review_addresses(people: Iterable[Mapping[str, Any] | None]) -> list[dict[str, str]]:
    """The addresses flagged "dominio por revisar", each once, with whose they are."""
    found: dict[str, dict[str, str]] = {}
    for person in people:
        if person and person.get("review") and person.get("email") not in found:
            name = f"{person.get('nombres', '')} {person.get('apellidos', '')}".strip()
            found[person["email"]] = {"email": person["email"], "name": name}
    return list(found.values())


def flag_lines(
    flags: list[str], people: Iterable[Mapping[str, Any] | None]
) -> tuple[list[str], list[dict[str, str]]]:
    """The flags to show as they are, and the addresses to show one per line; the bare
    "dominio por revisar" stays only if no address of the ticket carries it."""
    review = review_addresses(people)
    return [f for f in flags if f != REVIEW_FLAG or not review], review


def people_of(data: Mapping[str, Any]) -> list[Mapping[str, Any] | None]:
    """Everyone a ticket's data names: the responsible, the colleagues, a change's person."""
    return [data.get("resp"), *data.get("people", []), data.get("person")]


def _event(app: Context, row: Any) -> dict[str, Any]:
    at, actor, _from_state, to_state, message, kind = row
    # actor: officer | staff | system; who: the specialist's name when staff acted.
    return {"at": at, "actor": actor.split(":", 1)[0], "who": actor_name(app, actor),
            "state": to_state, "message": message, "kind": kind}  # fmt: skip


def actions(state: str, mine: bool) -> list[str]:
    """The card's buttons for a ticket in ``state`` (taken by the viewer or not)."""
    found: list[str] = []
    if state == REGISTERED or (state in (IN_PROGRESS, OBSERVED) and not mine):
        found.append("take")
    if state in (IN_PROGRESS, OBSERVED, ATTENDED):
        found.append("reply")
    if state == IN_PROGRESS:
        found += ["observe", "attend"]
    if state == ATTENDED:
        found.append("close")
    found.append("files")
    return found


async def files_of(tx: Tx, number: str) -> list[Document]:
    found = await tx.fetchall(
        "SELECT tf.sha256, tf.filename, f.mime FROM ticket_files tf"
        " JOIN tickets t ON t.id = tf.ticket_id JOIN files f ON f.sha256 = tf.sha256"
        " WHERE t.number = ? ORDER BY tf.role, tf.filename",
        (number,),
    )
    return [Document(sha, name, mime) for sha, name, mime in found]


async def latest_formato(tx: Tx, number: str) -> Document | None:
    """The ticket's newest Formato (a correction adds ``_v2``, ``_v3``...), if it has one."""
    found = await tx.fetchall(
        "SELECT tf.sha256, tf.filename, f.mime FROM ticket_files tf"
        " JOIN tickets t ON t.id = tf.ticket_id JOIN files f ON f.sha256 = tf.sha256"
        " WHERE t.number = ? AND tf.role = 'formato'",
        (number,),
    )
    if not found:
        return None
    sha256, name, mime = max(found, key=lambda row: version_of(row[1]))
    return Document(sha256, name, mime)


# ------------------------------------------------------------------ actions
async def take(app: Context, tx: Tx, number: str, actor: Actor) -> str:
    """Registrado → En atención with the actor as assignee; a later Tomar reassigns."""
    ticket = await _open(tx, number)
    if ticket.state == REGISTERED:
        await workflow.change_state(
            app.calendar,
            tx,
            number,
            IN_PROGRESS,
            actor.tag,
            assignee=(actor.channel, actor.chat_id),
        )
        return "taken"
    await tx.execute(
        "UPDATE tickets SET assignee_channel = ?, assignee_chat = ?, updated_at = ? WHERE id = ?",
        (actor.channel, actor.chat_id, tx.stamp, ticket.id),
    )
    await workflow.record(tx, ticket.id, actor.tag, ticket.state, ticket.state, None, "asignacion")
    return "reassigned"


async def observe(app: Context, tx: Tx, number: str, part: str, message: str, actor: Actor) -> int:
    """En atención → Observado naming the part; returns the business days left (paused)."""
    ticket = await _open(tx, number)
    if part not in kind_of(ticket.type).parts:
        raise TransitionError(f"{number}: {part} cannot be observed on a {ticket.type}")
    await workflow.change_state(app.calendar, tx, number, OBSERVED, actor.tag, message, part=part)
    (paused,) = await tx.fetchone(
        "SELECT paused_days_left FROM tickets WHERE id = ?", (ticket.id,)
    )
    return int(paused or 0)


class AnswerRequired(TransitionError):
    """A consulta is attended with its answer: Atender without one is refused."""


async def attend(
    app: Context, tx: Tx, number: str, actor: str, message: str | None = None
) -> workflow.Changed:
    """En atención → Atendido, closing as the ticket's type does: a consulta with its answer
    (required), which the officer reads in the notice; a profile change telling which
    profiles changed; an access request pointing to the institutional email. Any of them may
    carry a message."""
    ticket = await _open(tx, number)
    if kind_of(ticket.type).answered and not (message and message.strip()):
        raise AnswerRequired(f"{number}: a consulta is attended with its answer")
    details: dict[str, Any] = {}
    if ticket.type == TicketType.PROFILES:
        (raw,) = await tx.fetchone("SELECT data FROM tickets WHERE id = ?", (ticket.id,))
        change = json.loads(raw)
        sections = app.services.sections
        before = await registry.current(tx, change.get("base", ""), sections, but=ticket.id)
        details["changes"] = registry.changes_view(registry.apply(before, change, sections))
    return await workflow.change_state(
        app.calendar, tx, number, ATTENDED, actor, message, details=details
    )


async def close(app: Context, tx: Tx, number: str, actor: str) -> None:
    await workflow.change_state(app.calendar, tx, number, CLOSED, actor)


async def staff_message(app: Context, tx: Tx, number: str, text: str, actor: Actor) -> None:
    """Relay a specialist's words to the officer, tagged with the ticket."""
    ticket = await _open(tx, number, also=(ATTENDED,))
    await workflow.record(tx, ticket.id, actor.tag, ticket.state, ticket.state, text, "staff")
    notice = Outbound(
        "aviso.mensaje",
        {"number": number, "message": text},
        rows(notice_choice("reply", number, "btn.notice_reply")),
    )
    await workflow.tell_officer(tx, ticket, notice)


async def officer_message(
    app: Context, tx: Tx, ticket: Ticket, text: str, files: Sequence[Mapping[str, Any]] = ()
) -> bool:
    """The officer's answer: on the ticket, to the specialist who took it; an answer to an
    observation of kind "otro" is the correction itself (back to En atención). Files sent
    with it (checked as a consulta's) join the ticket and reach the specialist too."""
    documents = []
    (had,) = await tx.fetchone(
        "SELECT count(*) FROM ticket_files WHERE ticket_id = ? AND role = 'respuesta'",
        (ticket.id,),
    )
    for index, file in enumerate(files, start=had + 1):
        extension = EXTENSIONS.get(str(file["kind"]), "bin")
        name = f"Respuesta_{index:02d}_{ticket.number}.{extension}"
        await tx.execute(
            "INSERT OR IGNORE INTO ticket_files (ticket_id, sha256, role, filename)"
            " VALUES (?, ?, 'respuesta', ?)",
            (ticket.id, file["sha256"], name),
        )
        mime = MIMES.get(str(file["kind"]), "application/octet-stream")
        documents.append(Document(str(file["sha256"]), name, mime))
    recorded = text or f"({len(documents)} archivos)"
    await workflow.record(
        tx, ticket.id, "officer", ticket.state, ticket.state, recorded, "oficial"
    )
    resumed = False
    if ticket.state == OBSERVED:
        (part,) = await tx.fetchone("SELECT observed_part FROM tickets WHERE id = ?", (ticket.id,))
        if part == "otro":
            await workflow.change_state(
                app.calendar, tx, ticket.number, IN_PROGRESS, "officer", notify=False
            )
            resumed = True
    await tell_staff(
        app,
        tx,
        ticket,
        Outbound(
            "mesa.respuesta_oficial",
            {
                "number": ticket.number,
                "text": text,
                "resumed": resumed,
                "file_count": len(documents),
            },
            rows(
                notice_choice("card", ticket.number, "btn.notice_card"),
                notice_choice("sreply", ticket.number, "btn.notice_reply"),
            ),
        ),
    )
    for document in documents:
        shown = Outbound("mesa.adjunto", {"name": document.filename}, document=document)
        await tell_staff(app, tx, ticket, shown)
    return resumed


async def tell_staff(app: Context, tx: Tx, ticket: Ticket, message: Outbound) -> list[OutboxRow]:
    """To the specialist who took the ticket (by mail if they took it by mail); if nobody
    did, to the staff group, or else to every staff member (or, with inbound mail on and no
    staff chat at all, to the help desk's mailbox)."""
    if ticket.assignee is not None:
        targets = [ticket.assignee]
    elif app.settings.staff_chat_id is not None:
        targets = [("telegram", str(app.settings.staff_chat_id))]
    else:
        targets = [(ch, chat) for ch, chats in app.staff.items() for chat in sorted(chats)]
        if not targets and app.settings.imap_host:  # a desk that works only by mail
            targets = [(EMAIL, app.settings.helpdesk_email)]
    payload = encode(message, 0, None)
    sent: list[OutboxRow] = []
    for channel, chat in targets:
        if channel == EMAIL:  # a specialist who took it by mail (see bot.desk.mail_rules)
            await mail_notice(app, tx, ticket, chat, message)
            continue
        sent += await tx.enqueue(channel, chat, [(payload, False)], ticket.id)
    return sent


async def post_new_ticket(app: Context, tx: Tx, number: str) -> list[OutboxRow]:
    """A new ticket in the staff group (when one is configured), with a link to its card."""
    if app.settings.staff_chat_id is None:
        return []
    row = await tx.fetchone(
        "SELECT t.type, t.due_on, t.flags, t.entity_name, e.ruc, t.data FROM tickets t"
        " LEFT JOIN entities e ON e.id = t.entity_id WHERE t.number = ?",
        (number,),
    )
    kind, due_on, flags, entity, ruc, data = row
    shown_flags, review = flag_lines(json.loads(flags), people_of(json.loads(data)))
    post = Outbound(
        "mesa.nuevo",
        {"number": number, "type": kind, "due": due_on, "entity": entity, "ruc": ruc,
         "flags": shown_flags, "review": review},
        link=("btn.notice_card", number),
        bulk=True,
    )  # fmt: skip
    chat = str(app.settings.staff_chat_id)
    return await tx.enqueue("telegram", chat, [(encode(post, 0, None), True)])


async def _open(tx: Tx, number: str, also: tuple[str, ...] = ()) -> Ticket:
    ticket = await workflow.load(tx, number)
    if ticket is None:
        raise TransitionError(f"no ticket {number}")
    if ticket.state not in (*OPEN_STATES, *also):
        raise TransitionError(f"{number} is {ticket.state}")
    return ticket
