"""What every part of the :class:`~bot.store.database.Store` shares: its attributes, and the
methods one part calls in another, declared here so each part type-checks on its own.

``bot.store.database.Store`` mixes the parts together (:mod:`bot.store.group_commit`,
:mod:`bot.store.outbox`, :mod:`bot.store.inbox`) and defines the rest; each method is
defined once, and the declarations below come last in the method order, so they are never
what runs. The parts never import ``bot.store.database`` (no import cycle).
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections import deque
from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
from datetime import datetime
from pathlib import Path
from typing import Any, TypeVar

import aiosqlite

from bot.store.connection import Connection
from bot.store.marks import Mark
from bot.store.turns import Turn, Tx

T = TypeVar("T")


class StoreBase:
    """The store's attributes (set in ``Store.__init__``), and what the parts call in one
    another (defined in the module named beside each)."""

    conn: Connection
    path: Path
    _commits: int  # since the last checkpoint
    _checkpointing: asyncio.Task[None] | None
    _lock: asyncio.Lock  # one writer at a time: held around every use of the connection
    _turns: deque[Turn[Any]]  # turns waiting for the next batch
    _marks: list[Mark]  # delivery marks waiting for the leader's next COMMIT
    _mark_timer: asyncio.TimerHandle | None  # commits late marks alone
    _leader: asyncio.Task[None] | None  # runs the batches (group_commit)
    batches: int  # batches of turns run, and the turns in them (for the benchmark)
    batched_turns: int
    carried_marks: int  # delivery marks committed with a batch of turns

    # ------------------------------------------------------------- database
    def transaction(self, now: datetime) -> AbstractAsyncContextManager[Tx]:
        raise NotImplementedError

    def reading(self) -> AbstractAsyncContextManager[aiosqlite.Connection]:
        raise NotImplementedError

    def _committed(self) -> None:
        raise NotImplementedError

    async def _write(self, work: Callable[[sqlite3.Connection], T]) -> T:
        raise NotImplementedError

    # --------------------------------------------------------- group_commit
    def _ensure_leader(self) -> None:
        raise NotImplementedError
