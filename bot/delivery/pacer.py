"""One pacer for everything a bot sends: just under Telegram's flood limits, fair, and
interactive replies first.

Telegram lets a bot send about 30 messages per second in total, about one per second in one
chat (short bursts allowed) and 20 per minute in one group, and answers 429 with
``retry_after`` beyond that. Sending as fast as possible and retrying the 429s wastes the
pauses Telegram imposes; pacing each call on its own (``AIORateLimiter``) queues in arrival
order, so a burst of reminders delays the officer who is waiting for an answer. Here every
send asks :meth:`Pacer.slot` for its turn, and one scheduler hands turns out:

* **Whole bot**: turns are spaced ``1 / per_second`` apart (no burst: an even stream is what
  keeps a sliding-window limiter quiet), *and* a turn starts only when fewer than
  ``per_second`` sends finished in the last second. The second rule counts a send from when
  its answer arrived, which is after Telegram counted it, so the bot cannot exceed a
  sliding one-second window however late a request travels.
* **One chat**: one turn per second sustained, ``chat_burst`` at once, for what the bot sends
  on its own (reminders, digests, notices) and for everything in **a group** (negative chat
  id), which also has at most ``group_per_minute`` sends finishing in any minute. A *reply*
  in a private chat answers something the person just did, so the person's own pace bounds
  it (and a chat flooding the bot has its updates dropped before they make replies, see
  :class:`~bot.channels.dispatch.ChatDispatcher`): it is not held to one per second, which
  would make
  an officer who taps through the cards wait for a budget only unsolicited messages need.
  Replies still count against the chat's budget (a reminder right after them waits) and
  still wait out the chat's 429s.
* **Fair, interactive first**: chats waiting for a turn take them in rotation (a chat that
  just sent goes to the back, unless its next message ``continues`` the same reply: a
  reply of two messages then costs the officer one round of the others, not two), and a
  chat waiting with a reply to a person always goes before one waiting with a bulk
  notification (reminders, digests, staff-group posts).
* **429**: :meth:`flooded` holds that chat only, for ``retry_after``; 429s for two different
  chats within a second mean the whole bot is over the limit, and the whole bot waits.

Times come from an injected ``clock`` and the scheduler waits with an injected ``sleep``, so
tests run it on a fake clock.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import OrderedDict, deque
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Protocol

log = logging.getLogger(__name__)

INTERACTIVE, BULK = 0, 1
GROUP_WINDOW = 60.0  # seconds: Telegram's per-group limit is per minute
SWEEP_EVERY = 30.0  # seconds between forgetting chats with nothing left to pace
NEVER = float("inf")


class Sleep(Protocol):
    async def __call__(self, delay: float, /) -> None: ...


@dataclass
class _Chat:
    waiters: deque[tuple[int, asyncio.Future[None]]] = field(default_factory=deque)
    tat: float = 0.0  # theoretical arrival time of the next send (GCRA)
    held_until: float = 0.0
    inflight: int = 0
    # A group's sends finished in the last minute (its per-minute limit); None for a private
    # chat, which has no such limit (an empty deque is 760 bytes of the ~1,700 a chat took).
    finished: deque[float] | None = None

    @property
    def group(self) -> bool:
        return self.finished is not None


class Pacer:
    def __init__(
        self,
        per_second: float = 30.0,
        *,
        chat_per_second: float = 1.0,
        chat_burst: int = 3,
        group_per_minute: int = 20,
        clock: Callable[[], float] = time.monotonic,
        sleep: Sleep | None = None,
    ) -> None:
        if per_second <= 0 or chat_per_second <= 0 or chat_burst < 1 or group_per_minute < 1:
            raise ValueError("pacer limits must be positive")
        self.per_second = per_second
        self.interval = 1.0 / per_second
        self.window = max(1, int(per_second))  # sends allowed to finish within one second
        self.chat_interval = 1.0 / chat_per_second
        self.chat_tolerance = (chat_burst - 1) * self.chat_interval
        self.group_per_minute = group_per_minute
        self.clock = clock
        self._sleep = sleep or asyncio.sleep
        self._chats: dict[str, _Chat] = {}
        self._lanes: tuple[OrderedDict[str, None], OrderedDict[str, None]] = (
            OrderedDict(),
            OrderedDict(),
        )
        self._tat = 0.0
        self._inflight = 0
        self._finished: deque[float] = deque()
        self._held_until = 0.0
        self._last_flood: tuple[float, str] | None = None
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._swept = 0.0
        self.granted = 0
        self.floods = 0

    # ---------------------------------------------------------------- public
    @contextlib.asynccontextmanager
    async def slot(
        self, chat_id: str, *, bulk: bool = False, continues: bool = False
    ) -> AsyncIterator[None]:
        """Wait for this chat's turn, then send inside the block (its end counts as the
        moment the send finished, whether it succeeded or not). ``continues``: the message
        is the next part of the reply this chat just sent (the caller bounds such runs)."""
        await self._admit(chat_id, bulk, continues)
        try:
            yield
        finally:
            self._finish(chat_id)

    def flooded(self, chat_id: str, retry_after: float) -> None:
        """Telegram answered 429 for ``chat_id``: hold what must wait ``retry_after``."""
        now = self.clock()
        self.floods += 1
        until = now + retry_after
        chat = self._chat(chat_id)
        chat.held_until = max(chat.held_until, until)
        last = self._last_flood
        if last is not None and last[1] != chat_id and now - last[0] < 1.0:
            # Two chats refused within a second: it is the bot's limit, not one chat's.
            log.warning("flood limit reached for the whole bot; pausing %.1fs", retry_after)
            self._held_until = max(self._held_until, until)
        self._last_flood = (now, chat_id)
        self._wake.set()

    @property
    def waiting(self) -> int:
        return sum(len(chat.waiters) for chat in self._chats.values())

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    # -------------------------------------------------------------- internals
    def _chat(self, chat_id: str) -> _Chat:
        chat = self._chats.get(chat_id)
        if chat is None:
            group = chat_id.startswith("-")  # Telegram's groups have negative ids
            chat = self._chats[chat_id] = _Chat(finished=deque() if group else None)
        return chat

    async def _admit(self, chat_id: str, bulk: bool, continues: bool = False) -> None:
        chat = self._chat(chat_id)
        # A group's posts are for staff: they wait behind replies to a person.
        lane = BULK if bulk or chat.group else INTERACTIVE
        turn: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        chat.waiters.append((lane, turn))
        if len(chat.waiters) == 1:
            self._lanes[lane][chat_id] = None
            if continues:
                self._lanes[lane].move_to_end(chat_id, last=False)
        if self._task is None or self._task.done():
            self._task = asyncio.create_task(self._run(), name="pacer")
        self._wake.set()
        try:
            await turn
        except asyncio.CancelledError:
            if turn.done() and not turn.cancelled():
                self._finish(chat_id)  # granted, but the sender went away: give it back
            else:
                self._forget_waiter(chat_id, turn)
            raise

    def _forget_waiter(self, chat_id: str, turn: asyncio.Future[None]) -> None:
        chat = self._chats.get(chat_id)
        if chat is None:
            return
        head = chat.waiters[0][1] if chat.waiters else None
        chat.waiters = deque(w for w in chat.waiters if w[1] is not turn)
        if head is turn:
            self._requeue(chat_id, chat, front=True)
        self._wake.set()

    def _requeue(self, chat_id: str, chat: _Chat, *, front: bool = False) -> None:
        for lane in self._lanes:
            lane.pop(chat_id, None)
        if chat.waiters:
            lane = self._lanes[chat.waiters[0][0]]
            lane[chat_id] = None
            if front:
                lane.move_to_end(chat_id, last=False)

    def _finish(self, chat_id: str) -> None:
        now = self.clock()
        self._inflight -= 1
        self._finished.append(now)
        chat = self._chat(chat_id)
        chat.inflight -= 1
        if chat.finished is not None:
            chat.finished.append(now)
        self._wake.set()

    def _bot_ready_at(self, now: float) -> float:
        finished = self._finished
        while finished and finished[0] <= now - 1.0:
            finished.popleft()
        at = max(self._tat, self._held_until)
        if self._inflight + len(finished) >= self.window:
            # Full: free when the oldest finished send leaves the window, or (if sends still
            # in flight fill it) when one finishes, which wakes the scheduler.
            at = max(at, finished[0] + 1.0 if finished else NEVER)
        return at

    def _chat_ready_at(self, chat: _Chat, lane: int, now: float) -> float:
        if lane == INTERACTIVE:  # a reply in a private chat (groups are always BULK)
            return chat.held_until
        at = max(chat.tat - self.chat_tolerance, chat.held_until)
        finished = chat.finished
        if finished is not None:
            while finished and finished[0] <= now - GROUP_WINDOW:
                finished.popleft()
            if chat.inflight + len(finished) >= self.group_per_minute:
                at = max(at, finished[0] + GROUP_WINDOW if finished else NEVER)
        return at

    def _grant_ready(self) -> float | None:
        """Hand out every turn that may start now; returns how long until the next one may
        (None: nobody waits, NEVER: until a send finishes)."""
        while True:
            now = self.clock()
            if not self._lanes[INTERACTIVE] and not self._lanes[BULK]:
                return None
            bot_at = self._bot_ready_at(now)
            if bot_at > now:
                return bot_at - now
            earliest = NEVER
            chosen: str | None = None
            for kind, lane in enumerate(self._lanes):
                for chat_id in lane:
                    at = self._chat_ready_at(self._chats[chat_id], kind, now)
                    if at <= now:
                        chosen = chat_id
                        break
                    earliest = min(earliest, at)
                if chosen is not None:
                    break
            if chosen is None:
                return earliest - now
            self._grant(chosen, now)

    def _grant(self, chat_id: str, now: float) -> None:
        chat = self._chats[chat_id]
        _lane, turn = chat.waiters.popleft()
        self._tat = max(self._tat, now) + self.interval
        chat.tat = max(chat.tat, now) + self.chat_interval
        self._inflight += 1
        chat.inflight += 1
        self.granted += 1
        self._requeue(chat_id, chat)  # to the back of its lane: the others go first
        turn.set_result(None)

    def _sweep(self, now: float) -> None:
        """Forget chats whose limits no longer constrain anything (memory stays bounded)."""
        idle = [
            chat_id
            for chat_id, chat in self._chats.items()
            if not chat.waiters
            and not chat.inflight
            and chat.tat <= now
            and chat.held_until <= now
            and not (chat.finished and chat.finished[-1] > now - GROUP_WINDOW)
        ]
        for chat_id in idle:
            del self._chats[chat_id]
        self._swept = now

    async def _run(self) -> None:
        while True:
            self._wake.clear()
            delay = self._grant_ready()
            now = self.clock()
            if now - self._swept >= SWEEP_EVERY:
                self._sweep(now)
            if delay is None or delay == NEVER:
                await self._wake.wait()
                continue
            sleeper = asyncio.ensure_future(self._sleep(delay))
            waker = asyncio.ensure_future(self._wake.wait())
            try:
                await asyncio.wait((sleeper, waker), return_when=asyncio.FIRST_COMPLETED)
            finally:
                for task in (sleeper, waker):
                    task.cancel()
