"""What flows may ask of the application during one event, bound to that event's transaction.

Everything a service writes (a verification code, a ticket, a mail to send) commits together
with the conversation state and the replies, or not at all. :class:`TurnServices` implements
the ports of :mod:`conversations.ports` (mypy checks it where ``App.process`` hands it to the
engine).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import TYPE_CHECKING, Any

from bot import dates
from bot.desk import card as desk
from bot.desk.intake import open_access_request, open_consultation, open_profile_update
from bot.desk.services import DeskServices
from bot.domain import files, registry
from bot.domain.records import add_file
from bot.domain.ticket_types import TicketType
from bot.domain.types import Submitted, Who
from bot.domain.workflow import ATTENDED, CANCELLED, CLOSED
from bot.store.database import Tx, iso
from bot.store.retention import CODE_LIFETIME

if TYPE_CHECKING:
    from bot.domain.types import Context

log = logging.getLogger(__name__)

CODE_RESEND_AFTER = timedelta(seconds=60)
CODE_MAX_TRIES = 5
HISTORY_SHOWN = 8  # the latest events in the officer's view of a ticket
FINISHED = (ATTENDED, CLOSED, CANCELLED)  # no news will come of these tickets


@dataclass(frozen=True)
class CodeSent:
    wait_seconds: int = 0


def _hash(salt: str, code: str) -> str:
    return hashlib.sha256(f"{salt}:{code}".encode()).hexdigest()


class TurnServices(DeskServices):
    def __init__(self, app: Context, tx: Tx, who: Who) -> None:
        self.app = app
        self.tx = tx
        self.who = who
        base = app.services
        self.notice_version = base.notice_version
        self.sections = base.sections
        self.helpdesk_email = base.helpdesk_email
        # A path on this machine means something only to someone sitting at it.
        self.local_outbox = base.local_outbox if who.local else None

    def label(self, key: str) -> str:
        """A button's text, for flows that quote a choice back (e.g. the authority)."""
        return self.app.texts.label(key, {})

    def today(self) -> date:
        return dates.lima_date(self.tx.now)

    async def pdf_from_photos(self, photos: list[str]) -> dict[str, Any] | str:
        """One PDF from photos already stored (one page each), checked as any PDF sent and
        stored: {"sha256", "pages", "name", "size"}, or the refusal code."""
        import asyncio

        images = [await asyncio.to_thread(self.app.files.read, sha) for sha in photos]
        try:
            data = await asyncio.to_thread(files.pdf_from_images, images)
        except Exception:  # Pillow refuses an image in many ways: it cannot be a page
            log.info("photos of a resolution could not become a PDF", exc_info=True)
            return "image_damaged"
        verdict = await asyncio.to_thread(files.inspect, data, "resolucion.pdf")
        refusal = files.refusal_for("resolution", verdict)
        if refusal is not None:
            return refusal
        stored = await asyncio.to_thread(self.app.files.put, data)
        await add_file(self.tx, stored.sha256, stored.size, verdict.mime or "", "pdf")
        return {
            "sha256": stored.sha256,
            "pages": verdict.pages,
            "name": "resolucion_fotos.pdf",
            "size": stored.size,
        }

    async def entity_name(self, ruc: str) -> str | None:
        row = await self.tx.fetchone("SELECT name FROM entities WHERE ruc = ?", (ruc,))
        return None if row is None else str(row[0])

    # ------------------------------------------------------ verification codes
    async def send_code(self, email: str) -> CodeSent:
        now = self.tx.now
        last = await self.tx.fetchone(
            "SELECT created_at FROM verification_codes WHERE person_id = ? AND email = ?"
            " ORDER BY id DESC LIMIT 1",
            (self.who.person_id, email),
        )
        if last is not None:
            elapsed = now - datetime.fromisoformat(last[0])
            if elapsed < CODE_RESEND_AFTER:
                return CodeSent(
                    wait_seconds=int((CODE_RESEND_AFTER - elapsed).total_seconds()) + 1
                )
        code = f"{secrets.randbelow(1_000_000):06d}"
        salt = secrets.token_hex(8)
        await self.tx.execute(
            "INSERT INTO verification_codes (person_id, email, code_hash, salt, created_at,"
            " expires_at) VALUES (?, ?, ?, ?, ?, ?)",
            (
                self.who.person_id,
                email,
                _hash(salt, code),
                salt,
                iso(now),
                iso(now + CODE_LIFETIME),
            ),
        )
        texts = self.app.texts
        await self.app.mail.enqueue(
            self.tx,
            kind="code",
            to=[email],
            cc=[],
            subject=texts.plain("mail.code_subject", {}),
            body=texts.plain("mail.code_body", {"code": code, "minutes": 10}),
            attachments=[],
        )
        log.info("verification code issued for person %d", self.who.person_id)
        return CodeSent()

    async def check_code(self, email: str, code: str) -> tuple[str, int]:
        """("ok" | "wrong" | "expired" | "locked", tries left)."""
        row = await self.tx.fetchone(
            "SELECT id, code_hash, salt, expires_at, tries, confirmed_at FROM verification_codes"
            " WHERE person_id = ? AND email = ? ORDER BY id DESC LIMIT 1",
            (self.who.person_id, email),
        )
        if row is None:
            return "expired", 0
        code_id, code_hash, salt, expires_at, tries, confirmed = row
        if confirmed is not None:
            return "ok", CODE_MAX_TRIES - tries
        if tries >= CODE_MAX_TRIES:
            return "locked", 0
        if self.tx.now >= datetime.fromisoformat(expires_at):
            return "expired", 0
        if hmac.compare_digest(_hash(salt, code), code_hash):
            await self.tx.execute(
                "UPDATE verification_codes SET confirmed_at = ? WHERE id = ?",
                (self.tx.stamp, code_id),
            )
            return "ok", CODE_MAX_TRIES - tries
        await self.tx.execute(
            "UPDATE verification_codes SET tries = tries + 1 WHERE id = ?", (code_id,)
        )
        left = CODE_MAX_TRIES - tries - 1
        return ("wrong" if left else "locked"), left

    async def email_proved(self, email: str) -> bool:
        """Whether this person already confirmed a code sent to ``email`` (in any flow)."""
        row = await self.tx.fetchone(
            "SELECT 1 FROM verification_codes"
            " WHERE person_id = ? AND email = ? AND confirmed_at IS NOT NULL LIMIT 1",
            (self.who.person_id, email),
        )
        return row is not None

    async def my_contact(self) -> dict[str, Any] | None:
        """Who this person said they are in their latest ticket that says it (an access
        request's responsible, or who asked a consulta), to offer "¿Sigues siendo …?"."""
        found = await self.tx.fetchall(
            "SELECT data FROM tickets WHERE person_id = ? AND type IN (?, ?)"
            " ORDER BY id DESC LIMIT 5",
            (self.who.person_id, TicketType.ACCESS, TicketType.CONSULTATION),
        )
        wanted = ("nombres", "apellidos", "cargo", "email", "phone")
        for (raw,) in found:
            resp = json.loads(raw).get("resp")
            if isinstance(resp, dict) and all(resp.get(field) for field in wanted):
                return resp
        return None

    # --------------------------------------------------------------- status
    async def my_tickets(self, limit: int = 10) -> list[dict[str, str]]:
        found = await self.tx.fetchall(
            "SELECT number, type, state FROM tickets WHERE person_id = ? ORDER BY id DESC LIMIT ?",
            (self.who.person_id, limit),
        )
        return [{"number": n, "type": t, "state": s} for n, t, s in found]

    async def ticket_detail(self, number: str) -> dict[str, Any] | None:
        """The ticket for its owner or staff; None for anyone else, as for no such ticket.

        It shows the message that came with the current state (an observation, a consulta's
        answer), the latest events with the desk's messages as messages, the same file
        count as the desk's card, and whether there is a Formato to download again."""
        row = await self.tx.fetchone(
            "SELECT t.id, t.number, t.type, t.state, t.person_id, t.registered_at, t.due_on,"
            " t.paused_days_left, t.entity_name, e.ruc, t.desk_number FROM tickets t"
            " LEFT JOIN entities e ON e.id = t.entity_id WHERE t.number = ?",
            (number,),
        )
        if row is None or (row[4] != self.who.person_id and not self.who.is_staff):
            return None
        (ticket_id, number, kind, state, _owner, registered, due_on, paused, entity, ruc,
         desk_number) = row  # fmt: skip
        events = await self.tx.fetchall(
            "SELECT at, actor, to_state, message, kind FROM ticket_events"
            " WHERE ticket_id = ? AND kind != 'asignacion' ORDER BY id",
            (ticket_id,),
        )
        files = await desk.files_of(self.tx, number)
        due = date.fromisoformat(due_on)
        today = self.today()
        left = self.app.calendar.business_days_between(today, due)
        entered = [e for e in events if e[4] == "estado" and e[2] == state]
        return {
            "number": number,
            "type": kind,
            "state": state,
            "entity": entity,
            "ruc": ruc,
            "desk_number": desk_number,
            "registered_at": registered,
            "due": due_on,
            "days_left": left,
            "overdue": due < today,
            "paused_days_left": paused,
            "open": state not in FINISHED,
            "attachments": len(files),
            "formato": await desk.latest_formato(self.tx, number) is not None,
            "state_message": entered[-1][3] if entered and entered[-1][1] != "officer" else None,
            "history": [
                {"at": at, "state": to_state, "message": message, "kind": event_kind}
                for at, _actor, to_state, message, event_kind in events[-HISTORY_SHOWN:]
            ],
            "earlier": max(0, len(events) - HISTORY_SHOWN),
        }

    # ------------------------------------------------------------- requests
    async def my_entity(self) -> dict[str, str] | None:
        """The entity of the officer's latest ticket, to offer it again."""
        row = await self.tx.fetchone(
            "SELECT e.ruc, t.entity_name FROM tickets t JOIN entities e ON e.id = t.entity_id"
            " WHERE t.person_id = ? ORDER BY t.id DESC LIMIT 1",
            (self.who.person_id,),
        )
        return None if row is None else {"ruc": row[0], "name": row[1]}

    async def my_data(self) -> dict[str, Any]:
        """Everything stored about the person, as shown by /mis_datos."""
        person = self.who.person_id
        consents = await self.tx.fetchall(
            "SELECT notice_version, accepted, at FROM consents WHERE person_id = ? ORDER BY id",
            (person,),
        )
        emails = await self.tx.fetchall(
            "SELECT DISTINCT email FROM verification_codes"
            " WHERE person_id = ? AND confirmed_at IS NOT NULL",
            (person,),
        )
        tickets = await self.tx.fetchall(
            "SELECT number, type, state FROM tickets WHERE person_id = ? ORDER BY id",
            (person,),
        )
        state = await self.tx.fetchone(
            "SELECT state FROM conversations WHERE identity_id = ?", (self.who.identity_id,)
        )
        return {
            "channel": self.who.channel,
            "consents": [{"version": v, "accepted": bool(a), "at": at} for v, a, at in consents],
            "emails": [e for (e,) in emails],
            "tickets": [{"number": n, "type": t, "state": s} for n, t, s in tickets],
            # Followed in this chat only while the chat exists: erasure ends that.
            "open_tickets": [n for n, _t, s in tickets if s not in FINISHED],
            "has_draft": bool(state and ('"drafts":{"' in state[0] or '"frame":{' in state[0])),
        }

    async def managed_entities(self) -> list[dict[str, str]]:
        """Entities whose access request, made by this person with a confirmed institutional
        email, was attended: the ones whose profiles they may change."""
        found = await self.tx.fetchall(
            "SELECT t.number, t.data, e.ruc, t.entity_name FROM tickets t"
            " JOIN entities e ON e.id = t.entity_id"
            " WHERE t.person_id = ? AND t.type = ? AND t.state IN (?, ?) ORDER BY t.id DESC",
            (self.who.person_id, TicketType.ACCESS, ATTENDED, CLOSED),
        )
        confirmed = {
            email
            for (email,) in await self.tx.fetchall(
                "SELECT email FROM verification_codes"
                " WHERE person_id = ? AND confirmed_at IS NOT NULL",
                (self.who.person_id,),
            )
        }
        entities: dict[str, dict[str, str]] = {}
        for number, raw, ruc, name in found:
            request = json.loads(raw)
            email = request.get("resp", {}).get("email")
            if email in confirmed and ruc not in entities:
                # "no": the request said the entity is not of the justice system, so its
                # justice-only sections cannot be given to anyone.
                justice = "no" if request.get("justicia") is False else ""
                entities[ruc] = {"ruc": ruc, "name": name, "ticket": number, "justicia": justice}
        return list(entities.values())

    async def registry_people(self, base: str) -> list[dict[str, str]]:
        """Everyone named in the registry of an entity this person manages: the responsible
        and the colleagues of its access request ``base``, and the people its attended
        profile changes added (to refuse someone else's DNI or mobile)."""
        found = await registry.recorded(self.tx, base, person_id=self.who.person_id)
        if found is None:
            return []
        request = found.request
        people = [request.get("resp", {}), *request.get("people", [])]
        people += [change["person"] for _, change in found.changes if change.get("person")]
        fields = ("nombres", "apellidos", "dni", "phone")
        return [{f: str(p.get(f, "")) for f in fields} for p in people if p]

    async def submit_profile_update(self, data: Mapping[str, Any]) -> Submitted:
        allowed = {e["ruc"]: e["ticket"] for e in await self.managed_entities()}
        if allowed.get(data["ruc"]) != data["base"]:  # checked again on the server
            raise PermissionError("not the verified responsible of this entity")
        return await open_profile_update(self.app, self.tx, self.who, dict(data))

    async def submit_consultation(self, data: Mapping[str, Any]) -> Submitted:
        return await open_consultation(self.app, self.tx, self.who, dict(data))

    async def submit_access_request(self, data: Mapping[str, Any]) -> Submitted:
        return await open_access_request(self.app, self.tx, self.who, dict(data))
