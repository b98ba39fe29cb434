"""Delivery marks as work: the statements that mark delivered outbox rows sent
(:func:`mark_work`), a mark waiting for a COMMIT (:class:`Mark`), running marks each in a
savepoint of its own (:func:`run_marks`) and telling their callers (:func:`settle_marks`), and
deleting the delivered rows of a chat that erased its data (:func:`forget_delivered`).

When a mark runs, and with which transaction, is :mod:`bot.store.outbox`'s and
:mod:`bot.store.group_commit`'s business.
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Callable, Iterable, Sequence
from datetime import datetime

from bot.store.rows import iso

MARK = "mark"  # the savepoint of a delivery mark carried by a batch

# The channel's id of a delivered message is kept where something may read it. On Telegram
# only a reply swiped onto a message about a ticket does (bot.desk.services): the id of any
# other Telegram message is not kept, which spares nearly every turn a write to the index
# outbox_external_ref (one page of the WAL in eleven). WhatsApp reads every id (delivery
# statuses, held rows, a reply's context); other channels are kept as they were.
KEPT_REF = "CASE WHEN channel = 'telegram' AND ticket_id IS NULL THEN NULL ELSE ? END"


class Mark:
    """A delivery mark waiting for the next batch's COMMIT (:meth:`Store.mark_sent`)."""

    __slots__ = ("done", "error", "work")

    def __init__(self, work: Callable[[sqlite3.Connection], None], done: asyncio.Future[None]):
        self.work = work
        self.done = done
        self.error: Exception | None = None


def run_marks(db: sqlite3.Connection, marks: Sequence[Mark]) -> None:
    """Each mark in a savepoint of its own: one that fails is undone alone (and its caller
    told, once the transaction commits); the others and the batch's turns go on."""
    for mark in marks:
        db.execute(f"SAVEPOINT {MARK}")
        try:
            mark.work(db)
        except Exception as error:
            db.execute(f"ROLLBACK TO {MARK}")
            mark.error = error
        db.execute(f"RELEASE {MARK}")


def mark_work(
    done: Iterable[tuple[int, str | None]], now: datetime
) -> Callable[[sqlite3.Connection], None] | None:
    """The statements that mark delivered rows sent; None when there are none."""
    by_ref: dict[str | None, list[int]] = {}  # a joined message's rows share its ref
    for row_id, ref in done:
        by_ref.setdefault(ref, []).append(row_id)
    if not by_ref:
        return None
    stamp = iso(now)

    def work(db: sqlite3.Connection) -> None:
        forget: list[int] = []
        for ref, ids in by_ref.items():
            for start in range(0, len(ids), 500):
                chunk = ids[start : start + 500]
                marks = ", ".join("?" for _ in chunk)
                update = (
                    f"UPDATE outbox SET state = 'sent', sent_at = ?, external_ref = {KEPT_REF}"
                    f" WHERE id IN ({marks}) AND forget = "
                )
                marked = db.execute(f"{update}0", [stamp, ref, *chunk]).rowcount
                if marked < len(chunk):  # rows of a chat that erased its data (or gone)
                    gone = db.execute(f"{update}1 RETURNING id", [stamp, ref, *chunk])
                    forget += [row_id for (row_id,) in gone.fetchall()]
        if forget:  # rows of a chat that erased its data
            forget_delivered(db, forget)

    return work


def no_work(db: sqlite3.Connection) -> None:
    return None


def settle_marks(marks: Iterable[Mark], error: Exception | None = None) -> None:
    for mark in marks:
        if mark.done.done():
            continue
        failure = error or mark.error
        if failure is None:
            mark.done.set_result(None)
        else:
            mark.done.set_exception(failure)


def forget_delivered(db: sqlite3.Connection, ids: Sequence[int]) -> None:
    """Rows written for a chat that erased its data go once delivered (none is held), and
    with the last of them its WhatsApp window row (kept until then: the confirmation needs
    the window open)."""
    chats: set[str] = set()
    for start in range(0, len(ids), 500):
        chunk = ids[start : start + 500]
        marks = ", ".join("?" for _ in chunk)
        gone = db.execute(
            f"DELETE FROM outbox WHERE id IN ({marks}) AND forget = 1"
            " AND NOT EXISTS (SELECT 1 FROM wa_held h WHERE h.outbox_id = outbox.id)"
            " RETURNING channel, chat_id",
            list(chunk),
        ).fetchall()
        chats |= {chat for channel, chat in gone if channel == "whatsapp"}
    for chat in chats:
        db.execute(
            "DELETE FROM wa_chats WHERE wa_id = ?1 AND NOT EXISTS"
            " (SELECT 1 FROM outbox WHERE channel = 'whatsapp' AND chat_id = ?1)",
            (chat,),
        )
