"""What the WhatsApp transport remembers of what it sent: the media ids of files it uploaded
(:class:`UploadedMedia`) and how much of a row of several messages already went out
(:class:`SentParts`). Both are bounded; :mod:`bot.channels.whatsapp` uses them.
"""

from __future__ import annotations

import hashlib
import json
from collections import OrderedDict
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


class SentParts:
    """How many messages of a row of several already went out, so that trying the row again
    does not repeat them (a long text split in two, text before a document, a list's lead).

    An entry lives while the row may still be tried: its send is being retried, or it was
    held part-way for the 24-hour window. It goes when the row is sent to the end, when the
    worker gives it up (marked failed), and when the channel stops (a restart sends a row
    whole, as after a crash). An entry names the row's messages, not only its id: SQLite
    gives a deleted row's id (an erased chat, retention) to the next row, whose messages must
    not be skipped, nor another chat's with the same messages. At most ``kept`` entries,
    oldest first dropped."""

    def __init__(self, kept: int = PARTS_KEPT) -> None:
        self.kept = kept
        self._sent: OrderedDict[int, tuple[bytes, int]] = OrderedDict()  # oldest first

    def __len__(self) -> int:
        return len(self._sent)

    def sent(self, row_id: int, chat_id: str, messages: list[Message]) -> int:
        """How many of ``messages`` (row ``row_id``'s, to ``chat_id``, in order) already
        went out."""
        found = self._sent.get(row_id)
        if found is None:
            return 0
        digest, count = found
        if digest != _digest(chat_id, messages):
            del self._sent[row_id]  # another row with the same id: a stale entry
            return 0
        return count

    def advance(self, row_id: int, chat_id: str, messages: list[Message], count: int) -> None:
        """``count`` of the row's messages went out; the rest are still to go."""
        self._sent[row_id] = (_digest(chat_id, messages), count)
        self._sent.move_to_end(row_id)
        while len(self._sent) > self.kept:
            self._sent.popitem(last=False)

    def forget(self, row_id: int) -> None:
        self._sent.pop(row_id, None)

    def clear(self) -> None:
        self._sent.clear()


def _digest(chat_id: str, messages: list[Message]) -> bytes:
    text = json.dumps([chat_id, messages], sort_keys=True, ensure_ascii=False)
    return hashlib.blake2b(text.encode(), digest_size=16).digest()
