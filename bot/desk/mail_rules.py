"""What one inbound mail does to a ticket, decided and applied inside the caller's transaction.

The rules, in order (the first that applies wins):

1. Our own mail coming back (our address, or a Message-ID we wrote) → review ``own``.
2. A delivery report (bounce) → review ``bounce``.
3. A sender over ``PTEBOT_IMAP_SENDER_LIMIT`` mails in the hour before it → review ``rate``.
4. A copy of a mail already applied (same Message-ID) → ``duplicate``, nothing done.
5. The ticket: In-Reply-To/References name a mail we sent (or one we read) about it, else
   the subject's ``[PTE-YYYY-NNNNNN]`` tag.
6. An automatic mail (Auto-Submitted, X-Autoreply...) from the desk that carries its own
   ticket number → ``desk_number`` (stored, the officer told); any other automatic mail
   (out-of-office, loops) → review ``automatic``.
7. No ticket → review ``no_ticket``.
8. The receiving server says the sender's domain failed DMARC (or SPF without DKIM) →
   review ``unauthenticated``: a desk or officer address may be forged.
9. From the desk (``PTEBOT_STAFF_EMAILS`` or the help-desk address): a first-line command
   (``#en-atencion``, ``#observado <parte>``, ``#atendido``, ``#cerrado``) goes through
   :mod:`bot.desk.card` with the chat desk's rules; a refused or mistyped one changes nothing and
   is answered by mail with the reason and the commands that apply. Otherwise the new text
   (no quoted history, no signature) and the accepted attachments reach the officer as the
   desk's message → ``relayed`` (``command``/``refused`` for commands).
10. From the ticket's officer (an address of theirs) → appended as the officer's message,
   the specialist told → ``officer``.
11. Anyone else → review ``sender``.

Nothing sent to review reaches a chat. The caller records the outcome with the mail's UID
in the same transaction.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from datetime import timedelta
from email.utils import parseaddr
from typing import TYPE_CHECKING, Any

from bot.desk import card as desk
from bot.desk.services import REPLY_STATES
from bot.desk.staff_mail import mail_staff
from bot.domain import workflow
from bot.domain.records import EXTENSIONS, add_file
from bot.domain.ticket_types import kind_of
from bot.domain.workflow import (
    ATTENDED,
    CANCELLED,
    CLOSED,
    IN_PROGRESS,
    OBSERVED,
    REGISTERED,
    Ticket,
    TransitionError,
)
from bot.mail.parse import Command, ParsedMail, desk_number, new_text, parse_command
from bot.store.database import Tx, iso
from conversations.events import Document, Outbound

if TYPE_CHECKING:
    from datetime import datetime

    from bot.domain.types import Context

MESSAGE_MAX = 3000  # what the chat desk accepts in one message
_HOUR = timedelta(hours=1)


@dataclass(frozen=True)
class CheckedFile:
    """An attachment after the content check, stored under its hash if accepted."""

    name: str  # the display name (cleaned), or the declared one for a refusal
    sha256: str | None = None
    size: int = 0
    mime: str | None = None
    kind: str | None = None
    refusal: str | None = None


@dataclass
class Handled:
    outcome: str
    reason: str | None = None
    ticket_id: int | None = None
    refused_files: list[CheckedFile] = field(default_factory=list)


def review(reason: str, ticket_id: int | None = None) -> Handled:
    return Handled("review", reason, ticket_id)


def own_address(app: Context) -> str:
    return parseaddr(app.settings.mail_from)[1].lower()


def is_staff_address(app: Context, address: str) -> bool:
    if not address:
        return False
    listed = app.settings.staff_emails
    domain = "@" + address.rpartition("@")[2]
    return address in listed or domain in listed or address == app.settings.helpdesk_email.lower()


async def handle(
    app: Context, tx: Tx, mail: ParsedMail, files: list[CheckedFile], arrived: datetime
) -> Handled:
    if mail.sender == own_address(app) or (
        mail.message_id
        and await tx.fetchone(
            "SELECT 1 FROM mail_outbox WHERE message_id = ? LIMIT 1", (mail.message_id,)
        )
    ):
        return review("own")
    if mail.automatic == "bounce" or not mail.sender:
        return review("bounce")
    hour_ago = iso(arrived.replace(microsecond=0) - _HOUR)
    (recent,) = await tx.fetchone(
        "SELECT count(*) FROM mail_inbox WHERE sender = ? AND arrived_at > ?"
        " AND outcome != 'pending'",
        (mail.sender, hour_ago),
    )
    if recent >= app.settings.imap_sender_limit:
        return review("rate")
    if mail.message_id and await tx.fetchone(
        "SELECT 1 FROM mail_inbox WHERE message_id = ?"
        " AND outcome NOT IN ('review', 'pending') LIMIT 1",
        (mail.message_id,),
    ):
        return Handled("duplicate")
    ticket = await find_ticket(tx, mail)
    ticket_id = ticket.id if ticket else None
    staff = is_staff_address(app, mail.sender)
    if mail.automatic is not None:
        number = desk_number(_pattern(app), mail.subject, mail.text)
        if staff and ticket is not None and number:
            await store_desk_number(app, tx, ticket, number)
            return Handled("desk_number", None, ticket.id)
        return review("automatic", ticket_id)
    if ticket is None:
        return review("no_ticket")
    if mail.unauthenticated:  # a desk or officer address that may be forged
        return review("unauthenticated", ticket.id)
    if staff:
        return await from_desk(app, tx, ticket, mail, files)
    if mail.sender in await officer_addresses(tx, ticket):
        return await from_officer(app, tx, ticket, mail, files)
    return review("sender", ticket.id)


def _pattern(app: Context) -> re.Pattern[str]:
    return re.compile(app.settings.desk_ticket_pattern)


async def find_ticket(tx: Tx, mail: ParsedMail) -> Ticket | None:
    """In-Reply-To/References first (a mail we sent or read about a ticket), then the tag."""
    ids = list(mail.in_reply_to[:50])
    if ids:
        marks = ", ".join("?" for _ in ids)
        row = await tx.fetchone(
            "SELECT t.number FROM mail_outbox m JOIN tickets t ON t.id = m.ticket_id"
            f" WHERE m.message_id IN ({marks}) ORDER BY m.id DESC LIMIT 1",
            ids,
        )
        if row is None:
            row = await tx.fetchone(
                "SELECT t.number FROM mail_inbox m JOIN tickets t ON t.id = m.ticket_id"
                f" WHERE m.message_id IN ({marks}) ORDER BY m.id DESC LIMIT 1",
                ids,
            )
        if row is not None:
            return await workflow.load(tx, str(row[0]))
    tag = mail.ticket_tag
    return await workflow.load(tx, tag) if tag else None


async def officer_addresses(tx: Tx, ticket: Ticket) -> set[str]:
    """The ticket's institutional addresses: its responsible (a profile change: the base
    request's), and every address its officer confirmed with a code."""
    (raw,) = await tx.fetchone("SELECT data FROM tickets WHERE id = ?", (ticket.id,))
    data = json.loads(raw)
    found = {str((data.get("resp") or {}).get("email", "")).lower()}
    if data.get("base"):
        base = await tx.fetchone("SELECT data FROM tickets WHERE number = ?", (data["base"],))
        if base is not None:
            found.add(str((json.loads(base[0]).get("resp") or {}).get("email", "")).lower())
    confirmed = await tx.fetchall(
        "SELECT DISTINCT email FROM verification_codes"
        " WHERE person_id = ? AND confirmed_at IS NOT NULL",
        (ticket.person_id,),
    )
    found |= {str(email).lower() for (email,) in confirmed}
    found.discard("")
    return found


async def store_desk_number(app: Context, tx: Tx, ticket: Ticket, number: str) -> None:
    (known,) = await tx.fetchone("SELECT desk_number FROM tickets WHERE id = ?", (ticket.id,))
    if known == number:
        return  # the same acknowledgement again: the officer already knows
    await tx.execute(
        "UPDATE tickets SET desk_number = ?, updated_at = ? WHERE id = ?",
        (number, tx.stamp, ticket.id),
    )
    notice = Outbound("correo.numero_mesa", {"number": ticket.number, "desk_number": number})
    await workflow.tell_officer(tx, ticket, notice)


# ------------------------------------------------------------------ the desk
def _text(mail: ParsedMail) -> str:
    text = new_text(mail.text)
    if len(text) > MESSAGE_MAX:
        text = text[: MESSAGE_MAX - 1].rstrip() + "…"
    return text


async def from_desk(
    app: Context, tx: Tx, ticket: Ticket, mail: ParsedMail, files: list[CheckedFile]
) -> Handled:
    actor = desk.Actor("email", mail.sender)
    text = _text(mail)
    accepted = [f for f in files if f.sha256 is not None]
    refused_files = [f for f in files if f.refusal is not None]
    command = parse_command(text)
    if command is not None:
        refusal = await apply_command(app, tx, ticket, command, actor)
        if refusal is not None:
            await answer_refusal(app, tx, ticket, mail, command, refusal)
            return Handled("refused", refusal, ticket.id, refused_files)
        current = await workflow.load(tx, ticket.number)
        if accepted and current is not None and current.state in REPLY_STATES:
            await forward_files(app, tx, current, accepted, "mesa")
        await answer_refused_files(app, tx, ticket, mail, refused_files)
        return Handled("command", command.name, ticket.id, refused_files)
    if not text and not accepted:
        await answer_refused_files(app, tx, ticket, mail, refused_files)
        return review("empty", ticket.id)
    if ticket.state not in REPLY_STATES:
        empty = Command("", "", None, "")
        await answer_refusal(app, tx, ticket, mail, empty, "closed")
        return Handled("refused", "closed", ticket.id, refused_files)
    if text:
        await desk.staff_message(app, tx, ticket.number, text, actor)
    await forward_files(app, tx, ticket, accepted, "mesa")
    await answer_refused_files(app, tx, ticket, mail, refused_files)
    return Handled("relayed", None, ticket.id, refused_files)


async def apply_command(
    app: Context, tx: Tx, ticket: Ticket, command: Command, actor: desk.Actor
) -> str | None:
    """Apply ``command`` as the chat desk would; the reason (a code) when it is refused."""
    if not command.name:
        return "unknown"
    state = ticket.state
    mine = ticket.assignee == (actor.channel, actor.chat_id)
    try:
        if command.name == "en-atencion":
            if state not in (REGISTERED, IN_PROGRESS, OBSERVED):
                return "state"
            if state != REGISTERED and mine:
                return "already_yours"
            await desk.take(app, tx, ticket.number, actor)
            if command.text:
                await desk.staff_message(app, tx, ticket.number, command.text, actor)
        elif command.name == "observado":
            if state != IN_PROGRESS:
                return "state"
            if command.part not in kind_of(ticket.type).parts:
                return "part"
            if len(command.text) < 2:
                return "no_text"
            await desk.observe(app, tx, ticket.number, command.part, command.text, actor)
        elif command.name == "atendido":
            if state != IN_PROGRESS:
                return "state"
            if kind_of(ticket.type).answered and not command.text:
                return "no_answer"
            await desk.attend(app, tx, ticket.number, actor.tag, command.text or None)
        elif command.name == "cerrado":
            if state != ATTENDED:
                return "state"
            if command.text:
                await desk.staff_message(app, tx, ticket.number, command.text, actor)
            await desk.close(app, tx, ticket.number, actor.tag)
    except TransitionError:
        return "state"
    return None


def commands_that_apply(ticket: Ticket, sender: str) -> list[str]:
    """The commands the ticket's state allows now, for the answer to a refused one."""
    mine = ticket.assignee == ("email", sender)
    found: list[str] = []
    if ticket.state == REGISTERED or (ticket.state in (IN_PROGRESS, OBSERVED) and not mine):
        found.append("en-atencion")
    if ticket.state == IN_PROGRESS:
        found += ["observado", "atendido"]
    if ticket.state == ATTENDED:
        found.append("cerrado")
    return found


async def answer_refusal(
    app: Context, tx: Tx, ticket: Ticket, mail: ParsedMail, command: Command, reason: str
) -> None:
    """A mail to the sender: what was refused, why, and what applies now."""
    current = await workflow.load(tx, ticket.number) or ticket
    data: dict[str, Any] = {
        "number": ticket.number,
        "type": ticket.type,
        "state": current.state,
        "reason": reason,
        "typed": command.typed,
        "part": command.part or "",
        "commands": commands_that_apply(current, mail.sender),
        "parts": list(kind_of(ticket.type).parts),
        "open": current.state not in (CLOSED, CANCELLED),
    }
    await mail_staff(app, tx, ticket, mail.sender, "correo.rechazo", data, mail)


async def answer_refused_files(
    app: Context, tx: Tx, ticket: Ticket, mail: ParsedMail, refused: list[CheckedFile]
) -> None:
    if not refused:
        return
    data = {
        "number": ticket.number,
        "refused": [{"name": f.name, "refusal": f.refusal} for f in refused],
    }
    await mail_staff(app, tx, ticket, mail.sender, "correo.adjuntos_rechazados", data, mail)


async def forward_files(
    app: Context, tx: Tx, ticket: Ticket, files: list[CheckedFile], who: str
) -> None:
    """Attach accepted files to the ticket and, from the desk, send them to the officer."""
    if not files:
        return
    (count,) = await tx.fetchone(
        "SELECT count(*) FROM ticket_files WHERE ticket_id = ? AND role = ?", (ticket.id, who)
    )
    for index, checked in enumerate(files, start=count + 1):
        assert checked.sha256 is not None
        assert checked.kind is not None
        mime = checked.mime or "application/octet-stream"
        await add_file(tx, checked.sha256, checked.size, mime, checked.kind)
        role_name = "Mesa" if who == "mesa" else "Responsable"
        name = f"{role_name}_{index:02d}_{ticket.number}.{EXTENSIONS.get(checked.kind, 'bin')}"
        await tx.execute(
            "INSERT OR IGNORE INTO ticket_files (ticket_id, sha256, role, filename)"
            " VALUES (?, ?, ?, ?)",
            (ticket.id, checked.sha256, who, name),
        )
        if who == "mesa":
            document = Document(checked.sha256, name, mime)
            notice = Outbound(
                "correo.adjunto_mesa", {"number": ticket.number, "name": name}, document=document
            )
            await workflow.tell_officer(tx, ticket, notice)


# --------------------------------------------------------------- the officer
async def from_officer(
    app: Context, tx: Tx, ticket: Ticket, mail: ParsedMail, files: list[CheckedFile]
) -> Handled:
    text = _text(mail)
    accepted = [f for f in files if f.sha256 is not None]
    if ticket.state not in REPLY_STATES:
        return review("closed", ticket.id)
    if len(text) < 2 and not accepted:
        return review("empty", ticket.id)
    if text:
        await desk.officer_message(app, tx, ticket, text)
    if accepted:
        await forward_files(app, tx, ticket, accepted, "responsable")
        current = await workflow.load(tx, ticket.number) or ticket
        notice = Outbound(
            "correo.adjuntos_oficial", {"number": ticket.number, "count": len(accepted)}
        )
        await desk.tell_staff(app, tx, current, notice)
    return Handled("officer", None, ticket.id, [f for f in files if f.refusal])
