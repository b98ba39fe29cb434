"""Mail to a specialist who works the ticket by mail (see :mod:`bot.desk.mail_rules`).

Kept beside the desk because the desk's notices (:func:`bot.desk.card.tell_staff`) reach
such a specialist through it; reading inbound mail stays in :mod:`bot.mail`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from bot.domain.types import Context
    from bot.domain.workflow import Ticket
    from bot.mail.parse import ParsedMail
    from bot.store.database import Tx
    from conversations.events import Outbound


def reply_headers(mail: ParsedMail) -> dict[str, str]:
    headers = {"Auto-Submitted": "auto-replied"}  # RFC 3834: no machine answers it back
    if mail.message_id:
        headers["In-Reply-To"] = mail.message_id
        chain = [*reversed(mail.in_reply_to[:10]), mail.message_id]
        headers["References"] = " ".join(dict.fromkeys(chain))
    return headers


async def mail_staff(
    app: Context,
    tx: Tx,
    ticket: Ticket,
    address: str,
    key: str,
    data: dict[str, Any],
    answering: ParsedMail | None = None,
) -> None:
    """A mail to a specialist about ``ticket`` (tag in the subject, threaded)."""
    texts = app.texts
    subject_data = {"number": ticket.number, "answering": answering.subject if answering else ""}
    await app.mail.enqueue(
        tx,
        kind="desk",
        to=[address],
        cc=[],
        subject=texts.plain("correo.asunto", subject_data),
        body=f"{texts.plain(key, data)}\n\n{texts.plain('correo.pie', {'number': ticket.number})}",
        attachments=[],
        ticket_id=ticket.id,
        headers=reply_headers(answering) if answering else {"Auto-Submitted": "auto-generated"},
    )


async def mail_notice(
    app: Context, tx: Tx, ticket: Ticket, address: str, message: Outbound
) -> None:
    """A notice meant for a specialist's chat, by mail to one who works by mail."""
    text = app.texts.plain(message.key, message.data)
    await mail_staff(app, tx, ticket, address, "correo.aviso", {"text": text})
