"""A driver that talks to the real app as a user would: send text, click buttons, upload.

It goes through ``App.process`` (one transaction per event) and an ``OutboxWorker`` whose
transport records what a channel would have shown, rendered from the committed outbox rows.
"""

from __future__ import annotations

import asyncio
import dataclasses
import itertools
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage

from bot.app import App
from bot.delivery.outbox import OutboxWorker
from bot.delivery.payload import Rendered, render
from bot.errors import PermanentDelivery
from bot.store.database import OutboxRow
from bot.texts import Capabilities
from conversations.events import FileInfo, Inbound, Kind
from conversations.text import normalize

_ids = itertools.count(1)
# The test chat deletes a pasted password, offers its number and takes swipe replies, as
# Telegram does; it shows a card's new version as a new message.
TEST_CAPABILITIES = Capabilities(
    deletes_messages=True, shares_contact=True, quotes=True, carrier="Telegram"
)


class FakeClock:
    def __init__(self, start: datetime | None = None) -> None:
        self.moment = start or datetime(2026, 12, 2, 15, 0, tzinfo=UTC)

    def now(self) -> datetime:
        return self.moment

    def advance(self, **delta: float) -> None:
        self.moment += timedelta(**delta)


@dataclass
class Screen:
    """What the user has seen: every delivered message, in order."""

    messages: list[Rendered] = field(default_factory=list)
    deleted: list[str | None] = field(default_factory=list)  # user messages taken back

    @property
    def last(self) -> Rendered:
        return self.messages[-1]


def button_keys(message: Rendered) -> list[str]:
    """The label keys of a message's buttons, row after row."""
    return [button.key for row in message.buttons for button in row]


def choices(message: Rendered) -> list[str]:
    """The choice ids of a message's buttons, row after row."""
    return [button.choice for row in message.buttons for button in row]


def keys(messages: list[Rendered]) -> list[str]:
    """The template keys of these messages, in order."""
    return [message.key for message in messages]


class RecordingTransport:
    def __init__(
        self, app: App, screen: Screen, capabilities: Capabilities = TEST_CAPABILITIES
    ) -> None:
        self.app = app
        self.screen = screen
        self.capabilities = capabilities
        self.blocked = False  # the user blocked the bot: every delivery is refused

    async def deliver(self, row: OutboxRow) -> str | None:
        if self.blocked:
            raise PermanentDelivery("blocked: Forbidden: bot was blocked by the user")
        rendered = render(self.app.texts, row.payload, self.capabilities)
        if rendered.delete_ref is not None:
            self.screen.deleted.append(rendered.delete_ref)
            return None
        self.screen.messages.append(rendered)
        return str(len(self.screen.messages))


class MemoryMailer:
    """The mail boundary, faked: keeps what would have been sent, and says when it was."""

    def __init__(self) -> None:
        self.sent: list[EmailMessage] = []
        self._changed = asyncio.Condition()

    async def send(self, msg: EmailMessage) -> str:
        self.sent.append(msg)
        async with self._changed:
            self._changed.notify_all()
        return f"mem-{len(self.sent)}"

    async def wait_for(
        self,
        condition: Callable[[], bool] | None = None,
        timeout: float = 10.0,  # noqa: ASYNC109
    ) -> bool:
        """Until ``condition`` (by default: a message was sent) holds, woken by each send;
        ``timeout`` is only a safety net (False: it never held)."""
        check = condition or (lambda: bool(self.sent))
        async with self._changed:
            try:
                await asyncio.wait_for(self._changed.wait_for(check), timeout)
            except TimeoutError:
                return check()
        return True

    def last_code(self) -> str:
        for msg in reversed(self.sent):
            body = msg.get_body()
            assert body is not None
            found = re.search(r"\b(\d{6})\b", body.get_content())
            if found:
                return found.group(1)
        raise AssertionError("no verification code was mailed")


class Driver:
    def __init__(
        self,
        app: App,
        chat_id: str = "1001",
        channel: str = "test",
        capabilities: Capabilities = TEST_CAPABILITIES,
    ) -> None:
        self.app = app
        self.files: dict[str, bytes] = {}
        self.chat_id = chat_id
        self.channel = channel
        self.screen = Screen()
        self.transport = RecordingTransport(app, self.screen, capabilities)
        self.worker = OutboxWorker(
            app.store, channel, self.transport, app.clock, sleep=self._backoff
        )
        # Everyone chatting with this app: rows for another chat reach that chat's screen.
        self.peers: dict[str, Driver] = {chat_id: self}

    async def peer(self, chat_id: str, *, staff: bool = False) -> Driver:
        """Another person on the same app (a help-desk specialist with ``staff``)."""
        other = Driver(self.app, chat_id, self.channel, self.transport.capabilities)
        other.peers = self.peers
        self.peers[chat_id] = other
        if staff:
            known = self.app.staff.get(self.channel, frozenset())
            self.app.staff[self.channel] = known | {chat_id}
        await other.start()
        return other

    async def _backoff(self, delay: float) -> None:
        """The worker's wait before a retry: the fake clock moves on, nothing sleeps."""
        advance = getattr(self.app.clock, "advance", None)
        if advance is not None:
            advance(seconds=delay)

    async def deliver(self, rows: list[OutboxRow]) -> None:
        """Hand committed rows to the screens of the chats they are for."""
        for row in rows:
            peer = self.peers.get(row.chat_id)
            if peer is not None:
                peer.worker.submit([row])
        for peer in list(self.peers.values()):
            await peer.worker.drain()

    async def start(self) -> None:
        await self.worker.start()
        await self.worker.drain()

    async def stop(self) -> None:
        for peer in list(self.peers.values()):
            await peer.worker.stop()

    async def _push(self, event: Inbound) -> list[Rendered]:
        before = len(self.screen.messages)
        await self.deliver(await self.app.process(event, self._fetch))
        await self.app.mail.send_due()
        return self.screen.messages[before:]

    async def _fetch(self, file_id: str) -> bytes:
        return self.files[file_id]

    def _event(self, kind: Kind, text: str = "", **extra: object) -> Inbound:
        return Inbound(
            self.channel,
            self.chat_id,
            f"ev-{next(_ids)}",
            kind,
            text,
            **extra,  # type: ignore[arg-type]
        )

    async def send(self, text: str) -> list[Rendered]:
        if text.startswith("/"):
            name, _, args = text[1:].partition(" ")
            return await self._push(self._event(Kind.COMMAND, name.lower(), args=args))
        event = self._event(Kind.TEXT, text)
        return await self._push(dataclasses.replace(event, message_ref=f"u-{event.event_id}"))

    async def reply(self, message: Rendered, text: str) -> list[Rendered]:
        """Answer one of the bot's messages with a swipe reply (Telegram's reply_to)."""
        ref = str(self.screen.messages.index(message) + 1)  # as RecordingTransport numbers
        event = self._event(Kind.TEXT, text, reply_to=ref)
        return await self._push(dataclasses.replace(event, message_ref=f"u-{event.event_id}"))

    def button(self, label: str) -> tuple[str, str | None]:
        """The callback data of the newest visible button with this label."""
        for index in range(len(self.screen.messages) - 1, -1, -1):
            message = self.screen.messages[index]
            for row in message.buttons:
                for button in row:
                    if button.label == label or normalize(button.label) == normalize(label):
                        return button.data, str(index + 1)
        shown = (
            [b.label for b in self.screen.last.buttons for b in b] if self.screen.messages else []
        )
        raise AssertionError(f"no button {label!r}; last message offers {shown}")

    def find(self, key: str = "", *, choice: str = "", **args: object) -> tuple[str, str | None]:
        """The callback data of the newest visible button whose label was rendered from
        template ``key`` (with ``args`` among its data), or whose choice id is ``choice``."""
        assert key or choice, "name a label key or a choice id"
        for index in range(len(self.screen.messages) - 1, -1, -1):
            for row in self.screen.messages[index].buttons:
                for button in row:
                    if key and button.key != key:
                        continue
                    if choice and button.choice != choice:
                        continue
                    if any(button.args.get(name) != value for name, value in args.items()):
                        continue
                    return button.data, str(index + 1)
        shown = button_keys(self.screen.last) if self.screen.messages else []
        raise AssertionError(f"no button {key or choice!r} {args}; last message offers {shown}")

    async def tap(self, key: str = "", *, choice: str = "", **args: object) -> list[Rendered]:
        """Press a button found by its label's template key (or its choice id), not by its
        wording: ``tap("btn.acepto")``, ``tap(choice="yo")``."""
        data, ref = self.find(key, choice=choice, **args)
        return await self._push(self._event(Kind.BUTTON, data, message_ref=ref))

    async def click(self, label: str) -> list[Rendered]:
        data, ref = self.button(label)
        return await self._push(self._event(Kind.BUTTON, data, message_ref=ref))

    async def click_data(self, data: str) -> list[Rendered]:
        return await self._push(self._event(Kind.BUTTON, data))

    async def upload(
        self,
        content: bytes,
        name: str | None = "resolucion.pdf",
        mime: str | None = "application/pdf",
        size: int | None = None,
        photo: bool = False,
    ) -> list[Rendered]:
        """Send a file; ``size`` declares a size other than the content's (as a channel may)."""
        file_id = f"file-{next(_ids)}"
        self.files[file_id] = content
        declared = len(content) if size is None else size
        info = FileInfo(file_id=file_id, name=name, mime=mime, size=declared, is_photo=photo)
        return await self._push(self._event(Kind.FILE, file=info))

    async def upload_in_album(self, content: bytes, group: str) -> list[Rendered]:
        file_id = f"file-{next(_ids)}"
        self.files[file_id] = content
        info = FileInfo(file_id=file_id, name=None, mime=None, size=len(content), group=group)
        return await self._push(self._event(Kind.FILE, file=info))

    async def share_contact(self, phone: str) -> list[Rendered]:
        return await self._push(self._event(Kind.CONTACT, phone=phone))

    async def redeliver(self, event: Inbound) -> list[Rendered]:
        return await self._push(event)

    async def sticker(self) -> list[Rendered]:
        return await self._push(self._event(Kind.UNSUPPORTED))
