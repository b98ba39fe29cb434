"""The synthetic officers of ``pte-bot bench``: their script, their updates, their waiting.

Every officer has the same conversation (8 updates): ``/start`` (consent notice), "Acepto",
"📋 Requisitos y pasos", then "Siguiente ▶" five times (the card is edited in place). Officers
are interleaved in waves: every officer's step 1, then every officer's step 2..., and an
officer's next step is fed only once the bot's reply to the previous one was delivered (it
taps the button that reply carried, found by its label, as a person would).

Updates are built as Bot API JSON (what ``getUpdates`` would return). The :class:`Tracker`
knows which officer waits for which reply. Latency of an update: from its JSON being parsed
until the last reply it caused reaches the fake Bot API.
"""

from __future__ import annotations

import asyncio
import time
from array import array
from dataclasses import dataclass
from typing import Any

from bot.bench.fake_telegram import BenchError, FakeTelegram
from bot.texts import Texts

FIRST_CHAT = 700_000_001
REPLY_TIMEOUT = 15.0  # seconds an officer waits for a reply before the run is declared broken
WATCH_EVERY = 1.0  # seconds between the watchdog's looks at the waiting officers


@dataclass(frozen=True)
class Action:
    text: str  # a command ("/start") or the label of the button to tap
    replies: int  # messages the bot sends or edits in answer

    @property
    def is_command(self) -> bool:
        return self.text.startswith("/")


def script(texts: Texts) -> list[Action]:
    """The conversation every officer has (8 updates)."""
    return [
        # One message each since issue 18: the acknowledgement goes in front of the question.
        Action("/start", 1),  # welcome + consent notice
        Action(texts.label("btn.accept", {}), 1),  # thanks + main menu
        Action(texts.label("menu.requisitos", {}), 1),  # card 1 (a new message)
        *(Action(texts.label("btn.next", {}), 1) for _ in range(5)),  # cards 2-6, edited
    ]


def _user(chat_id: int) -> dict[str, Any]:
    number = chat_id - FIRST_CHAT + 1
    return {
        "id": chat_id,
        "is_bot": False,
        "first_name": f"Oficial {number}",
        "language_code": "es",
    }


def update_json(
    update_id: int, chat_id: int, action: Action, server: FakeTelegram
) -> dict[str, Any]:
    """The Bot API JSON of an officer's action, as ``getUpdates`` would return it."""
    user = _user(chat_id)
    if action.is_command:
        command = action.text.split()[0]
        message = {
            "message_id": server.new_message_id(chat_id),
            "from": user,
            "chat": {"id": chat_id, "type": "private", "first_name": user["first_name"]},
            "date": int(time.time()),
            "text": action.text,
            "entities": [{"type": "bot_command", "offset": 0, "length": len(command)}],
        }
        return {"update_id": update_id, "message": message}
    on, data = server.button(chat_id, action.text)
    query = {
        "id": f"{chat_id}-{update_id}",
        "from": user,
        "chat_instance": str(-chat_id),
        "message": on,
        "data": data,
    }
    return {"update_id": update_id, "callback_query": query}


class Tracker:
    """Which officer waits for which reply; latencies of completed updates.

    An officer waits on a plain future. One watchdog timer for the whole run (checking
    every :data:`WATCH_EVERY` seconds) fails a wait past :data:`REPLY_TIMEOUT`, instead of
    an ``asyncio.wait_for`` per update: that costs a timer, a second future and an extra
    pass of the event loop for every update whose reply comes later (the product's, sent
    by its outbox after the commit), and nothing for a reply that came inside
    ``process_update`` (the peers'), so it taxed one contender only."""

    def __init__(self, server: FakeTelegram) -> None:
        self._expected: dict[int, tuple[int, float]] = {}  # chat -> (delivered count, t0)
        # chat -> (its waiter, when it gives up)
        self._waiters: dict[int, tuple[asyncio.Future[None], float]] = {}
        self._watchdog: asyncio.TimerHandle | None = None
        self.latencies = array("d")  # seconds; 8 bytes each (a list of floats: 32)
        server.on_delivery = self.delivered

    def expect(self, chat_id: int, count: int, t0: float) -> None:
        self._expected[chat_id] = (count, t0)

    def delivered(self, chat_id: int, count: int) -> None:
        expected = self._expected.get(chat_id)
        if expected is None or count < expected[0]:
            return
        self.latencies.append(time.perf_counter() - expected[1])
        del self._expected[chat_id]
        waiting = self._waiters.pop(chat_id, None)
        if waiting is not None and not waiting[0].done():
            waiting[0].set_result(None)

    async def ready(self, chat_id: int) -> None:
        """Wait for the reply to this officer's previous update."""
        if chat_id not in self._expected:
            return
        waiter = asyncio.get_running_loop().create_future()
        self._waiters[chat_id] = (waiter, time.perf_counter() + REPLY_TIMEOUT)
        if self._watchdog is None:
            self._watchdog = asyncio.get_running_loop().call_later(WATCH_EVERY, self._watch)
        await waiter

    def _watch(self) -> None:
        self._watchdog = None
        now = time.perf_counter()
        for chat_id, (waiter, deadline) in list(self._waiters.items()):
            if now > deadline:
                del self._waiters[chat_id]
                if not waiter.done():
                    waiter.set_exception(
                        BenchError(f"chat {chat_id}: no reply within {REPLY_TIMEOUT:.0f}s")
                    )
        if self._waiters:
            self._watchdog = asyncio.get_running_loop().call_later(WATCH_EVERY, self._watch)

    async def all_replied(self) -> None:
        for chat_id in list(self._expected):
            await self.ready(chat_id)
