"""What the WhatsApp transport remembers of what it sent: the media ids of files it uploaded
(:class:`UploadedMedia`) and how much of a row of several messages already went out
(:class:`SentParts`). Both are bounded; :mod:`bot.channels.whatsapp` uses them.
"""

from __future__ import annotations

import hashlib
import json
from collections import OrderedDict
from dataclasses import dataclass
from datetime import datetime, timedelta

from bot.channels.whatsapp_render import Message

# Meta keeps an uploaded file 30 days; its id is reused a day less, so it never names a file
# Meta has dropped (the send would be refused with 131053).
MEDIA_REUSED = timedelta(days=29)
# Ids kept, least recently used dropped first. A reuse is a message retried (seconds to hours
# later) or a Formato asked for again; an entry is ~250 bytes and a miss costs one upload.
MEDIA_KEPT = 1024
# Rows of several messages sent part-way, kept to resume them; oldest dropped first. Beyond
# rows being retried right now, only a row held part-way (131047 on a later message) whose
# officer never writes again stays; a row dropped is sent whole if it is ever released.
# As many rows of several messages keep their parts' wamids, for status callbacks (seconds
# after the send, while Meta retries a webhook: days); a row dropped is sent whole again if
# a status callback later holds it.
PARTS_KEPT = 1024


class UploadedMedia:
    """The media ids of files we uploaded, by content hash, so that a message retried or a
    file sent again is not uploaded again; bounded in age (``MEDIA_REUSED``) and in number
    (``MEDIA_KEPT``), so a long-running process does not keep every file it ever sent."""

    def __init__(self, kept: int = MEDIA_KEPT, reused: timedelta = MEDIA_REUSED) -> None:
        self.kept = kept
        self.reused = reused
        self._ids: OrderedDict[str, tuple[str, datetime]] = OrderedDict()  # LRU first

    def __len__(self) -> int:
        return len(self._ids)

    def get(self, sha256: str, now: datetime) -> str | None:
        """The id of the file uploaded with this hash, while Meta still has it."""
        found = self._ids.get(sha256)
        if found is None:
            return None
        media_id, uploaded_at = found
        if now - uploaded_at >= self.reused:
            del self._ids[sha256]
            return None
        self._ids.move_to_end(sha256)
        return media_id

    def add(self, sha256: str, media_id: str, uploaded_at: datetime) -> None:
        self._ids[sha256] = (media_id, uploaded_at)
        self._ids.move_to_end(sha256)
        while len(self._ids) > self.kept:
            self._ids.popitem(last=False)


@dataclass
class _Went:
    """A row of several messages: the rows it carries and each part's wamid as last sent."""

    digest: bytes
    ids: tuple[int, ...]
    wamids: list[str | None]
    failed_from: int | None = None  # the first part a status callback reported failed


class SentParts:
    """How many messages of a row of several already went out, so that trying the row again
    does not repeat them (a long text split in two, text before a document, a list's lead).

    The outbox keeps only the last part's wamid (``external_ref``), so the parts' wamids
    are kept here too: a status callback reporting an earlier part failed names the row
    (:meth:`rows_of`), and a row held by such a callback goes again from its first failed
    part on (:meth:`failed`), not whole: the officer has the parts before it.

    A count lives while the row may still be tried: its send is being retried, or it was
    held part-way for the 24-hour window. It goes when the row is sent to the end, when the
    worker gives it up (marked failed), and when the channel stops (a restart sends a row
    whole, as after a crash). The parts' wamids stay after the end, for the statuses, and go
    when the row is given up or sent again whole, and when the channel stops (after a
    restart a held row goes whole). An entry names the row's messages, not only its id: SQLite
    gives a deleted row's id (an erased chat, retention) to the next row, whose messages must
    not be skipped, nor another chat's with the same messages. At most ``kept`` entries,
    oldest first dropped."""

    def __init__(self, kept: int = PARTS_KEPT) -> None:
        self.kept = kept
        self._sent: OrderedDict[int, tuple[bytes, int]] = OrderedDict()  # oldest first
        self._went: OrderedDict[int, _Went] = OrderedDict()  # oldest first
        self._rows: dict[str, int] = {}  # a part's wamid -> its row's id (in _went)

    def __len__(self) -> int:
        """Rows to resume (the parts' wamids of rows sent to the end are not counted)."""
        return len(self._sent)

    def sent(self, row_id: int, chat_id: str, messages: list[Message]) -> int:
        """How many of ``messages`` (row ``row_id``'s, to ``chat_id``, in order) already
        went out."""
        digest = _digest(chat_id, messages)
        found = self._sent.get(row_id)
        if found is not None and found[0] != digest:
            del self._sent[row_id]  # another row with the same id: a stale entry
            found = None
        count = 0 if found is None else found[1]
        went = self._went.get(row_id)
        if went is not None and went.digest != digest:
            self._drop(row_id)  # the same: its parts' statuses name another row
            went = None
        if went is None or went.failed_from is None:
            return count
        # Sent to the end (or part-way), then parts reported failed: from the first of them.
        count = went.failed_from if found is None else min(count, went.failed_from)
        went.failed_from = None
        if count:
            self.advance(row_id, chat_id, messages, count)
        return count

    def advance(self, row_id: int, chat_id: str, messages: list[Message], count: int) -> None:
        """``count`` of the row's messages went out; the rest are still to go."""
        self._sent[row_id] = (_digest(chat_id, messages), count)
        self._sent.move_to_end(row_id)
        while len(self._sent) > self.kept:
            self._sent.popitem(last=False)

    def went(
        self, ids: tuple[int, ...], chat_id: str, messages: list[Message], index: int, wamid: str
    ) -> None:
        """Part ``index`` of the row carrying ``ids`` (its own id last) went out as
        ``wamid``. A part sent again replaces its old wamid: that send's status no longer
        names the row."""
        if len(messages) < 2:
            return  # one message: the outbox's external_ref names it
        row_id, digest = ids[-1], _digest(chat_id, messages)
        went = self._went.get(row_id)
        if went is None or went.digest != digest:
            self._drop(row_id)
            went = self._went[row_id] = _Went(digest, ids, [None] * len(messages))
        old = went.wamids[index]
        if old is not None:
            self._rows.pop(old, None)
        went.wamids[index] = wamid
        self._rows[wamid] = row_id
        self._went.move_to_end(row_id)
        while len(self._went) > self.kept:
            self._drop(next(iter(self._went)))

    def rows_of(self, wamid: str) -> tuple[int, ...] | None:
        """The rows carried by the row of several whose part ``wamid`` is (None: not one
        kept here)."""
        row_id = self._rows.get(wamid)
        return None if row_id is None else self._went[row_id].ids

    def failed(self, wamid: str) -> None:
        """Part ``wamid`` was reported failed and its row held: when it is tried again, it
        goes from its first failed part on."""
        row_id = self._rows.get(wamid)
        if row_id is None:
            return
        went = self._went[row_id]
        index = went.wamids.index(wamid)
        went.failed_from = index if went.failed_from is None else min(went.failed_from, index)

    def forget(self, row_id: int) -> None:
        """The row went to the end: nothing to resume (its parts' wamids stay)."""
        self._sent.pop(row_id, None)

    def given_up(self, row_id: int) -> None:
        self._sent.pop(row_id, None)
        self._drop(row_id)

    def clear(self) -> None:
        self._sent.clear()
        self._went.clear()
        self._rows.clear()

    def _drop(self, row_id: int) -> None:
        went = self._went.pop(row_id, None)
        for wamid in went.wamids if went is not None else ():
            if wamid is not None:
                self._rows.pop(wamid, None)


def _digest(chat_id: str, messages: list[Message]) -> bytes:
    text = json.dumps([chat_id, messages], sort_keys=True, ensure_ascii=False)
    return hashlib.blake2b(text.encode(), digest_size=16).digest()
