"""``/borrar_mis_datos`` (Ley 29733, cancellation): what erasure removes and what it keeps.

Removed, in the transaction of the turn that confirms it:

* consents, verification codes and the conversation (drafts and answers);
* the chat's identity: its external id (the Telegram chat id, the WhatsApp number) becomes
  ``borrado:<id>``, so the same chat writing again is a new person, asked for consent;
* every outbox row for the chat (sent, failed or pending), WhatsApp's held notices, the
  statuses of the messages sent to it, and the message ids of its own messages that
  carry the number (Meta's wamids encode it); WhatsApp's window row goes once the
  confirmation is delivered (it needs the window open);
* messages to other chats (staff) that quote the person: already sent, deleted; waiting,
  deleted once delivered;
* code mails to the person's addresses that were not sent yet;
* deliveries set aside that came from the chat;
* the confirmation itself is written with ``forget``: deleted as soon as it is delivered.

After the commit: the files only the person's drafts referred to, and every ``.eml`` file
that names the person (headers or text), are deleted; then the WAL is emptied (the
database deletes with ``secure_delete``), so no copy of what was removed stays on disk.

Kept: the tickets already submitted, as the help desk's administrative records (number,
state, the request as sent, with the person's names, DNI, email and phone, its events and
files: the resolution and the Formato), the mails already handed to the help desk, and
the anonymous person and identity rows the tickets point to. Open tickets are no longer
followed in the chat (:attr:`bot.domain.workflow.Ticket.reachable`); the confirmation says so.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import json
import logging
import re
from collections.abc import Awaitable, Callable, Iterable
from email import message_from_bytes
from email.message import EmailMessage
from pathlib import Path
from typing import TYPE_CHECKING, Any

from bot.store.database import ChatRecord, Store, Tx

if TYPE_CHECKING:
    from bot.domain.file_store import FileStore

log = logging.getLogger(__name__)
PERSONAL_KEYS = ("nombres", "apellidos", "dni", "email", "phone")
SHA256 = re.compile(r"\b[0-9a-f]{64}\b")
AfterCommit = Callable[[], Awaitable[None]]


async def erase(
    tx: Tx,
    chat: ChatRecord,
    channel: str,
    chat_id: str,
    *,
    files: FileStore,
    store: Store,
    eml_outbox: Path,
) -> AfterCommit:
    """Erase the person of ``chat`` in ``tx``; returns what to do once it committed: remove
    their draft's files from ``files``, the ``.eml`` copies naming them from ``eml_outbox``,
    and empty ``store``'s WAL."""
    person = chat.person_id
    state = await tx.fetchone(
        "SELECT state FROM conversations WHERE identity_id = ?", (chat.identity_id,)
    )
    drafts = state[0] if state else ""
    marks = await _identifiers(tx, person, channel, chat_id, drafts)
    tx.forgetting = (channel, chat_id)  # the rows this turn writes for the chat: see Tx

    await tx.execute("DELETE FROM consents WHERE person_id = ?", (person,))
    await tx.execute("DELETE FROM verification_codes WHERE person_id = ?", (person,))
    await tx.execute(
        "UPDATE chat_identities SET external_id = 'borrado:' || id WHERE id = ?",
        (chat.identity_id,),
    )
    await tx.execute("UPDATE people SET deleted_at = ? WHERE id = ?", (tx.stamp, person))

    # The chat's messages and WhatsApp's bookkeeping about it.
    mine = "channel = ? AND chat_id = ?"
    await tx.execute(
        "DELETE FROM wa_statuses WHERE wamid IN"
        f" (SELECT external_ref FROM outbox WHERE {mine} AND external_ref IS NOT NULL)",
        (channel, chat_id),
    )
    await tx.execute(
        f"DELETE FROM wa_held WHERE outbox_id IN (SELECT id FROM outbox WHERE {mine})",
        (channel, chat_id),
    )
    await tx.execute(f"DELETE FROM outbox WHERE {mine}", (channel, chat_id))
    if channel == "whatsapp":
        # Its window row goes with the confirmation, once delivered (bot.store.database).
        await tx.execute("DELETE FROM wa_held WHERE wa_id = ?", (chat_id,))
        await _forget_wamids(tx, chat_id)

    # Messages to others (staff cards, notices) that quote the person.
    for mark in marks:
        found = "instr(payload, ?) > 0"
        held = "EXISTS (SELECT 1 FROM wa_held h WHERE h.outbox_id = outbox.id)"
        await tx.execute(
            f"DELETE FROM outbox WHERE {found} AND state != 'pending' AND NOT {held}", (mark,)
        )
        await tx.execute(f"UPDATE outbox SET forget = 1 WHERE {found}", (mark,))
        await tx.execute(
            "DELETE FROM webhook_inbox WHERE failed_at IS NOT NULL AND instr(body, ?) > 0",
            (mark.encode(),),
        )
    await _drop_code_mails(tx, marks)
    orphans = await _draft_files(tx, chat.identity_id, drafts)
    log.info("person %d erased their data (%s)", person, channel)

    async def after_commit() -> None:
        for sha256 in orphans:
            files.path_for(sha256).unlink(missing_ok=True)
        removed = await asyncio.to_thread(remove_eml_naming, eml_outbox, marks)
        await store.checkpoint()
        log.info("erasure: %d draft files and %d .eml files removed", len(orphans), removed)

    return after_commit


async def _identifiers(tx: Tx, person: int, channel: str, chat_id: str, drafts: str) -> list[str]:
    """The strings that name the person: chat id, addresses, and the names, DNI, email and
    phone they gave (in their tickets and drafts). Too short to be telling: left out."""
    found = {chat_id}
    if channel == "whatsapp":
        found.add("+" + chat_id)
    for (address,) in await tx.fetchall(
        "SELECT DISTINCT email FROM verification_codes WHERE person_id = ?", (person,)
    ):
        found.add(address)
    sources = [raw for (raw,) in await tx.fetchall(
        "SELECT data FROM tickets WHERE person_id = ?", (person,)
    )]  # fmt: skip
    if drafts:
        sources.append(drafts)
    for raw in sources:
        for resp in _responsibles(json.loads(raw)):
            found.update(str(resp[key]) for key in PERSONAL_KEYS if resp.get(key))
    marks = {m for m in found if len(m) >= 5}
    marks |= {json.dumps(m)[1:-1] for m in marks}  # as an ASCII-escaped JSON string shows it
    return sorted(marks)


def _responsibles(value: Any) -> Iterable[dict[str, Any]]:
    """Every ``resp`` object (the officer's own data) anywhere in a request or a state."""
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, dict):
            resp = item.get("resp")
            if isinstance(resp, dict):
                yield resp
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)


async def _forget_wamids(tx: Tx, wa_id: str) -> None:
    """Meta's message ids carry the number they were exchanged with (base64 inside): the
    chat's own message ids recorded against redelivery, and its statuses, go too."""
    events = await tx.fetchall("SELECT event_id FROM processed_events WHERE channel = 'whatsapp'")
    for (event_id,) in events:
        if wamid_mentions(event_id, wa_id):
            await tx.execute(
                "DELETE FROM processed_events WHERE channel = 'whatsapp' AND event_id = ?",
                (event_id,),
            )
    for (wamid,) in await tx.fetchall("SELECT DISTINCT wamid FROM wa_statuses"):
        if wamid_mentions(wamid, wa_id):
            await tx.execute("DELETE FROM wa_statuses WHERE wamid = ?", (wamid,))


def wamid_mentions(wamid: str, digits: str) -> bool:
    if not wamid.startswith("wamid."):
        return False
    packed = wamid[len("wamid.") :]
    padded = packed + "=" * (-len(packed) % 4)
    for decode in (base64.b64decode, base64.urlsafe_b64decode):
        try:
            if digits.encode() in decode(padded):
                return True
        except (binascii.Error, ValueError):
            continue
    return False


async def _drop_code_mails(tx: Tx, marks: list[str]) -> None:
    """A code mail not sent yet to one of the person's addresses will not be."""
    pending = await tx.fetchall(
        "SELECT id, message FROM mail_outbox WHERE kind = 'code' AND state = 'pending'"
    )
    for mail_id, raw in pending:
        if raw is not None and _names_any(bytes(raw), marks):
            await tx.execute(
                "UPDATE mail_outbox SET state = 'failed', message = NULL,"
                " last_error = 'erased' WHERE id = ?",
                (mail_id,),
            )


async def _draft_files(tx: Tx, identity_id: int, drafts: str) -> list[str]:
    """Stored files only this conversation's drafts refer to: their rows go now."""
    orphans = []
    for sha256 in sorted(set(SHA256.findall(drafts))):
        used = await tx.fetchone(
            "SELECT EXISTS (SELECT 1 FROM ticket_files WHERE sha256 = ?)"
            " OR EXISTS (SELECT 1 FROM conversations WHERE identity_id != ?"
            "            AND instr(state, ?) > 0)",
            (sha256, identity_id, sha256),
        )
        if not used[0]:
            await tx.execute("DELETE FROM files WHERE sha256 = ?", (sha256,))
            orphans.append(sha256)
    return orphans


def remove_eml_naming(outbox: Path, marks: list[str]) -> int:
    """Delete the ``.eml`` files whose headers or text name the person; returns how many."""
    if not outbox.is_dir():
        return 0
    removed = 0
    for path in outbox.glob("*.eml"):
        try:
            raw = path.read_bytes()
        except FileNotFoundError:
            continue
        if _names_any(raw, marks):
            path.unlink(missing_ok=True)
            removed += 1
    return removed


def _names_any(raw: bytes, marks: list[str]) -> bool:
    """Whether a mail's headers or text parts (decoded: base64, quoted-printable) contain
    any of ``marks``."""
    from email import policy  # email.policy imported on first use, not at start-up

    message = message_from_bytes(raw, policy=policy.default)
    texts = [f"{name}: {value}" for name, value in message.items()]
    if isinstance(message, EmailMessage):
        for part in message.walk():
            if part.get_content_maintype() == "text":
                try:
                    texts.append(str(part.get_content()))
                except (LookupError, ValueError):
                    continue
    joined = "\n".join(texts)
    return any(mark in joined for mark in marks)
