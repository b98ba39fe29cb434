"""The application: one path for every message, from any channel.

``App.process(event)`` runs the engine inside ONE transaction that records the event id,
saves the conversation, applies the flow's effects and writes the replies to the outbox.
Replies are delivered only from committed outbox rows (see :mod:`bot.outbox`).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Protocol

from bot.payload import encode
from bot.settings import Settings
from bot.store import ChatRecord, OutboxRow, Store, Tx
from bot.texts import Section, Texts
from conversations.catalog import all_flows
from conversations.engine import Engine, Intents
from conversations.events import Inbound, Outbound
from conversations.flow import Effect, Person, RecordConsent
from conversations.state import State
from conversations.text import IntentMatcher, normalize

log = logging.getLogger(__name__)


class Clock(Protocol):
    def now(self) -> datetime: ...


class SystemClock:
    def now(self) -> datetime:
        return datetime.now(UTC)


@dataclass
class Services:
    """What flows may use besides their own state (narrow, read-mostly)."""

    notice_version: str
    sections: list[Section]
    helpdesk_email: str


@dataclass
class App:
    settings: Settings
    store: Store
    texts: Texts
    engine: Engine
    clock: Clock
    staff: dict[str, frozenset[str]] = field(default_factory=dict)

    async def close(self) -> None:
        await self.store.close()

    def is_staff(self, channel: str, chat_id: str) -> bool:
        return chat_id in self.staff.get(channel, frozenset())

    async def process(self, event: Inbound) -> list[OutboxRow]:
        """Handle one inbound event; returns the committed replies to deliver."""
        now = self.clock.now()
        try:
            async with self.store.transaction(now) as tx:
                if not await tx.claim_event(event.channel, event.event_id):
                    log.info("update %s:%s seen before; ignored", event.channel, event.event_id)
                    return []
                chat = await tx.load_chat(
                    event.channel, event.chat_id, self.engine.services.notice_version
                )
                state = State.from_json(chat.state)
                person = Person(
                    chat.person_id, chat.consent, self.is_staff(event.channel, event.chat_id)
                )
                reply = await self.engine.handle(state, event, person, now)
                for effect in reply.effects:
                    await self._apply(tx, chat, event, effect)
                await tx.save_state(chat.identity_id, reply.state.to_json(), chat.version + 1)
                return await self._enqueue(tx, event, reply.state.qid, reply.messages)
        except Exception:
            # The user's progress stays as it was; they get an apology and can try again.
            log.exception("failed to handle %s update %s", event.channel, event.event_id)
            async with self.store.transaction(now) as tx:
                if not await tx.claim_event(event.channel, event.event_id):
                    return []
                return await self._enqueue(tx, event, 0, [Outbound("common.error")])

    async def _enqueue(
        self, tx: Tx, event: Inbound, qid: int, messages: list[Outbound]
    ) -> list[OutboxRow]:
        payloads = [(encode(m, qid, event.message_ref), m.bulk) for m in messages]
        return await tx.enqueue(event.channel, event.chat_id, payloads)

    async def _apply(self, tx: Tx, chat: ChatRecord, event: Inbound, effect: Effect) -> None:
        if isinstance(effect, RecordConsent):
            await tx.record_consent(
                chat.person_id, effect.notice_version, effect.accepted, event.channel
            )
        else:  # pragma: no cover - a flow asked for something no service executes
            raise TypeError(f"no service executes {type(effect).__name__}")


def build_engine(texts: Texts, services: Services) -> Engine:
    flows = all_flows()
    engine = Engine(flows, texts, Intents({}, IntentMatcher({})), services)
    available = set(engine.commands())
    words = {
        normalize(word): command
        for command, typed in texts.command_words.items()
        if command in available
        for word in typed
    }
    engine_intents = Intents(words, IntentMatcher(texts.flow_phrases))
    return Engine(flows, texts, engine_intents, services)


async def create_app(settings: Settings, clock: Clock | None = None) -> App:
    """Wire store, texts, engine; apply migrations. No channel is started here."""
    texts = Texts(helpdesk=settings.helpdesk_email)
    services = Services(texts.notice_version, texts.sections, settings.helpdesk_email)
    store = await Store.open(settings.database_path)
    staff = {"telegram": frozenset(str(i) for i in settings.staff_telegram_ids)}
    return App(
        settings, store, texts, build_engine(texts, services), clock or SystemClock(), staff
    )
