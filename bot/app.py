"""The application: one path for every message, from any channel.

``App.process(event)`` runs the engine inside ONE transaction that records the event id,
saves the conversation, applies the flow's effects and writes the replies to the outbox.
Replies are delivered only from committed outbox rows (see :mod:`bot.delivery.outbox`).

``App.start(worker)``/``App.stop(worker)`` are called by each channel with its outbox worker.
The first start runs, once for every channel, the mail loop, the scheduled jobs (their rows
go to every started channel's worker) and the pick-up of rows other processes committed (the
staff shell); the last stop ends them.
"""

from __future__ import annotations

import asyncio
import dataclasses
import gc
import logging
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol

from bot.clock import Clock, SystemClock
from bot.delivery.mail_outbox import MailOutbox
from bot.delivery.payload import encode
from bot.domain import files
from bot.domain.calendar import BusinessCalendar
from bot.domain.erasure import AfterCommit, erase
from bot.domain.file_store import FileStore
from bot.domain.records import add_file
from bot.domain.types import Services, Who
from bot.jobs import run_all
from bot.mail.smtp import EmlMailer, Mailer, SmtpMailer
from bot.modes import secure_data_dir
from bot.services import TurnServices
from bot.settings import Settings
from bot.store.database import ChatRecord, OutboxRow, Store, Tx
from bot.texts import Texts
from conversations.catalog import all_flows
from conversations.engine import Engine, Intents
from conversations.events import Inbound, Outbound
from conversations.flow import Effect, ForgetMe, Person, RecordConsent
from conversations.ports import Ports
from conversations.state import State
from conversations.text import IntentMatcher, normalize

log = logging.getLogger(__name__)

JOBS_EVERY = 600.0  # seconds between runs of the scheduled jobs
# Seconds from a channel's start to the jobs' first run. Their work (the business calendar's
# holidays, about 0.2 s to load; a purge) runs on the event loop: started at once, it ran
# on the way to the first getUpdates whenever specialists were configured (issue 18).
JOBS_FIRST_AFTER = 5.0
PICK_UP_EVERY = 2.0  # seconds between looks for rows other processes committed


Fetch = Callable[[str], Awaitable[bytes]]


class Worker(Protocol):
    """A started channel's outbox worker: it keeps the rows of its own channel."""

    def submit(self, rows: Iterable[OutboxRow]) -> None: ...
    async def pick_up(self) -> None: ...


@dataclass
class App:
    settings: Settings
    store: Store
    texts: Texts
    engine: Engine
    clock: Clock
    services: Services
    files: FileStore
    calendar: BusinessCalendar
    mail: MailOutbox
    staff: dict[str, frozenset[str]] = field(default_factory=dict)
    _workers: list[Worker] = field(default_factory=list, init=False, repr=False)
    _loops: list[asyncio.Task[None]] = field(default_factory=list, init=False, repr=False)

    async def close(self) -> None:
        await self.store.close()

    async def start(self, worker: Worker) -> None:
        """A channel is up; the first one starts the mail loop, the jobs and the pick-up."""
        self._workers.append(worker)
        if len(self._workers) == 1:
            # What is alive now (modules, settings, templates, the app, PTB's Application)
            # lives as long as the channels: the collector's full passes stop walking it.
            # Alternating runs of pte-bot bench --window 4 (2,000 officers), without and
            # with: 702-749 and 818-881 updates/s, the slowest update about 5 ms sooner.
            # Undone when the last channel stops (a process may start another app).
            gc.freeze()
            self.mail.start()
            self._loops = [
                asyncio.create_task(self._jobs(), name="jobs"),
                asyncio.create_task(self._pick_up(), name="outbox-pick-up"),
            ]

    async def stop(self, worker: Worker) -> None:
        """A channel goes down (its worker gets nothing more); the last one ends the loops."""
        if worker not in self._workers:
            return
        self._workers.remove(worker)
        if not self._workers:
            loops, self._loops = self._loops, []
            for task in loops:
                task.cancel()
            await asyncio.gather(*loops, return_exceptions=True)
            await self.mail.stop()
            gc.unfreeze()

    def deliver(self, rows: list[OutboxRow]) -> None:
        """Committed rows to the started channels' workers (each keeps its own channel's)."""
        for worker in self._workers:
            worker.submit(rows)

    async def _jobs(self) -> None:
        """Reminders, digest, auto-close, purge, every few minutes; each job is idempotent
        across restarts (see :mod:`bot.jobs` and :mod:`bot.desk.jobs`). The first run waits
        :data:`JOBS_FIRST_AFTER`, so that it never delays the channel's start."""
        await asyncio.sleep(JOBS_FIRST_AFTER)
        while True:
            try:
                self.deliver(await run_all(self, self.clock.now()))
            except Exception:
                log.exception("scheduled job failed; trying again later")
            await asyncio.sleep(JOBS_EVERY)

    async def _pick_up(self) -> None:
        """Deliver what other processes (the staff shell) committed for the started channels."""
        while True:
            await asyncio.sleep(PICK_UP_EVERY)
            for worker in list(self._workers):
                try:
                    await worker.pick_up()
                except Exception:
                    log.exception("outbox pick-up failed; trying again later")

    def is_staff(self, channel: str, chat_id: str) -> bool:
        return chat_id in self.staff.get(channel, frozenset())

    async def process(self, event: Inbound, fetch: Fetch | None = None) -> list[OutboxRow]:
        """Handle one inbound event; returns the committed replies to deliver.

        A file is fetched, checked and stored by its hash *before* the transaction, so the
        rows that reference it never point at nothing. The turn runs in a batch of turns
        (see :meth:`bot.store.Store.turn`): its effects all-or-nothing in its savepoint, its
        replies returned only after the batch's COMMIT.
        """
        if event.file is not None and fetch is not None:
            event = await self._receive_file(event, fetch)
        now = self.clock.now()
        after_commit: list[AfterCommit] = []  # what an erasure removes outside the database
        claim = (event.channel, event.event_id, event.chat_id, self.services.notice_version)

        async def body(tx: Tx, chat: ChatRecord | None) -> list[OutboxRow]:
            return await self._turn(tx, chat, event, now, after_commit)

        async def on_error(tx: Tx, error: BaseException) -> list[OutboxRow]:
            # The user's progress stays as it was; they get an apology and can try again.
            after_commit.clear()  # the turn was rolled back: nothing of it is erased
            log.error(
                "failed to handle %s update %s", event.channel, event.event_id, exc_info=error
            )
            if not await tx.claim_event(event.channel, event.event_id):
                return []
            return await self._enqueue(tx, event, 0, [Outbound("common.error")])

        # Committed together with the turns of other chats ready at the same moment; the
        # clean-up after an erasure runs only once that COMMIT is done.
        rows = await self.store.turn(now, claim, body, on_error)
        for job in after_commit:
            try:
                await job()
            except Exception:  # the rows are gone; a file left is retried by the purges
                log.exception("clean-up after %s update %s failed", event.channel, event.event_id)
        return rows

    async def _turn(
        self,
        tx: Tx,
        chat: ChatRecord | None,
        event: Inbound,
        now: datetime,
        after_commit: list[AfterCommit],
    ) -> list[OutboxRow]:
        if chat is None:
            log.info("update %s:%s seen before; ignored", event.channel, event.event_id)
            return []
        state = State.from_json(chat.state)
        person = Person(chat.person_id, chat.consent, self.is_staff(event.channel, event.chat_id))
        if event.file is not None and event.file.sha256 and event.file.kind:
            stored = event.file
            mime = stored.mime or "application/octet-stream"
            await add_file(tx, stored.sha256 or "", stored.size or 0, mime, stored.kind or "")
        who = Who(
            chat.person_id,
            chat.identity_id,
            event.channel,
            event.chat_id,
            person.is_staff,
            local=event.local,
        )
        services: Ports = TurnServices(self, tx, who)
        reply = await self.engine.handle(state, event, person, now, services)
        for effect in reply.effects:
            await self._apply(tx, chat, event, effect, after_commit)
        if any(isinstance(effect, ForgetMe) for effect in reply.effects):
            reply.state = State()  # nothing of the old conversation is kept
        payloads = [
            (encode(m, reply.state.qid, event.message_ref), m.bulk) for m in reply.messages
        ]
        replies = await tx.save_and_enqueue(
            chat.identity_id,
            reply.state.to_json(),
            chat.version + 1,
            event.channel,
            event.chat_id,
            payloads,
        )
        # Notifications this turn wrote for other chats (staff ↔ officer) go too.
        return [*tx.enqueued, *replies]

    async def slow_down(self, channel: str, chat_id: str) -> list[OutboxRow]:
        """Tell a chat that sends faster than anyone types that the rest was not read."""
        log.info("%s chat flooding: later messages dropped until it drains", channel)
        return await self.notify(channel, chat_id, "common.slow_down")

    async def notify(self, channel: str, chat_id: str, key: str) -> list[OutboxRow]:
        """A notice the channel itself owes a chat (outside any turn), as an outbox row."""
        async with self.store.transaction(self.clock.now()) as tx:
            notice = encode(Outbound(key), 0, None)
            return await tx.enqueue(channel, chat_id, [(notice, False)])

    async def _receive_file(self, event: Inbound, fetch: Fetch) -> Inbound:
        info = event.file
        assert info is not None
        if files.too_big(info.size):
            checked = dataclasses.replace(info, refusal="file_too_big")
        else:
            data = await fetch(info.file_id)
            verdict = files.inspect(data, info.name)
            if verdict.refusal is not None:
                checked = dataclasses.replace(info, refusal=verdict.refusal, size=len(data))
            else:
                stored = await asyncio.to_thread(self.files.put, data)
                checked = dataclasses.replace(
                    info,
                    name=verdict.display_name,  # never the sender's raw name
                    sha256=stored.sha256,
                    kind=verdict.kind,
                    mime=verdict.mime,  # what the content is, not what the sender declared
                    pages=verdict.pages,
                    size=stored.size,
                )
        return dataclasses.replace(event, file=checked)

    async def _enqueue(
        self, tx: Tx, event: Inbound, qid: int, messages: list[Outbound]
    ) -> list[OutboxRow]:
        payloads = [(encode(m, qid, event.message_ref), m.bulk) for m in messages]
        return await tx.enqueue(event.channel, event.chat_id, payloads)

    async def _apply(
        self,
        tx: Tx,
        chat: ChatRecord,
        event: Inbound,
        effect: Effect,
        after_commit: list[AfterCommit],
    ) -> None:
        if isinstance(effect, RecordConsent):
            await tx.record_consent(
                chat.person_id, effect.notice_version, effect.accepted, event.channel
            )
        elif isinstance(effect, ForgetMe):
            cleanup = await erase(
                tx,
                chat,
                event.channel,
                event.chat_id,
                files=self.files,
                store=self.store,
                eml_outbox=self.settings.data_dir / "outbox",
            )
            after_commit.append(cleanup)
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
    phrases = dict(texts.flow_phrases)
    for key, entry in texts.faq.items():
        phrases["faq:" + key] = entry["frases"]
    targets = {key: entry.get("flujo", "") for key, entry in texts.faq.items()}
    engine_intents = Intents(words, IntentMatcher(phrases), targets)
    return Engine(flows, texts, engine_intents, services)


def build_mailer(settings: Settings) -> Mailer:
    if settings.smtp_host:
        password = settings.smtp_password.get_secret_value() if settings.smtp_password else None
        return SmtpMailer(
            settings.smtp_host,
            settings.smtp_port,
            settings.smtp_username,
            password,
            settings.smtp_starttls,
        )
    return EmlMailer(settings.data_dir / "outbox")


async def create_app(
    settings: Settings, clock: Clock | None = None, mailer: Mailer | None = None
) -> App:
    """Wire store, texts, engine, files, mail; apply migrations. No channel is started here."""
    clock = clock or SystemClock()
    texts = Texts(helpdesk=settings.helpdesk_email)
    local_outbox = None if settings.smtp_host else str(settings.data_dir / "outbox")
    services = Services(
        texts.notice_version, texts.sections, settings.helpdesk_email, local_outbox
    )
    secure_data_dir(settings.data_dir)  # an older release's 0755/0644 narrowed, see modes
    store = await Store.open(settings.database_path)
    staff = {
        "telegram": frozenset(str(i) for i in settings.staff_telegram_ids),
        "whatsapp": frozenset(settings.staff_whatsapp_ids),
    }
    mail = MailOutbox(store, mailer or build_mailer(settings), settings.mail_from, clock)
    return App(
        settings=settings,
        store=store,
        texts=texts,
        engine=build_engine(texts, services),
        clock=clock,
        services=services,
        files=FileStore(settings.data_dir / "files"),
        calendar=BusinessCalendar.from_data_dir(settings.data_dir),
        mail=mail,
        staff=staff,
    )
