"""One IMAP connection, driven from asyncio: the standard ``imaplib`` in a thread of its own.

Why ``imaplib`` in a thread rather than an asyncio client: the settings promise STARTTLS
(``PTEBOT_IMAP_SECURITY=starttls``), which aioimaplib 2.0 does not implement, and the
standard library's client is typed (``mypy --strict``), maintained with Python and needs
no new dependency. Every call runs on the connection's single worker thread, so the
``imaplib`` object is never used by two threads at once.

IDLE (RFC 2177) is not in ``imaplib`` before Python 3.14: :meth:`ImapSession.idle` sends it,
waits with ``select`` on the socket (and the TLS layer's own buffer) so that the thread can
end the wait by itself, and ends with DONE. A wait lasts at most ``IDLE_CYCLE`` seconds; the
caller then looks at the folder again whatever was said, so a notification the server sent
in the same packet as the continuation (read into ``imaplib``'s buffer, out of ``select``'s
sight) waits at most one cycle.

    ImapError            the connection failed or the server refused: reconnect later
    └── ImapAuthError    the server refused the login (wrong user or password)

Messages of these errors name the command and the server's status, never a mailbox's
contents or an address.
"""

from __future__ import annotations

import asyncio
import contextlib
import imaplib
import re
import select
import socket
import ssl
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Final, TypeVar

from bot.errors import PteBotError

T = TypeVar("T")
IDLE_CYCLE: Final = 120.0  # seconds of one IDLE before looking at the folder again
_EXISTS: Final = re.compile(rb"^\* \d+ (EXISTS|RECENT)\b", re.IGNORECASE)
_UID: Final = re.compile(rb"\bUID (\d+)")
_INTERNALDATE: Final = re.compile(rb'INTERNALDATE "([^"]+)"')


class ImapError(PteBotError):
    """The connection failed or the server answered NO/BAD."""


class ImapAuthError(ImapError):
    """The server refused the login."""


@dataclass(frozen=True)
class Fetched:
    uid: int
    arrived: datetime
    raw: bytes


def _quote(folder: str) -> str:
    # Folder names are ASCII here (INBOX, Revisar); a quoted string keeps spaces working.
    return '"' + folder.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _uid_set(uids: list[int]) -> str:
    return ",".join(str(uid) for uid in sorted(uids))


class ImapSession:
    """A logged-in connection with one selected folder."""

    def __init__(
        self,
        host: str,
        port: int,
        security: str,
        username: str,
        password: str,
        *,
        timeout: float = 30.0,
        ssl_context: ssl.SSLContext | None = None,
    ) -> None:
        self.host = host
        self.port = port
        self.security = security
        self.username = username
        self._password = password
        self.timeout = timeout
        self.ssl_context = ssl_context or ssl.create_default_context()
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="imap")
        self._imap: imaplib.IMAP4 | None = None
        self._stop_idle = threading.Event()
        self._tags = 0
        self.capabilities: frozenset[str] = frozenset()

    def __repr__(self) -> str:  # no password in reprs or tracebacks
        return f"ImapSession(host={self.host!r}, port={self.port!r})"

    async def _call(self, work: Callable[[], T]) -> T:
        try:
            return await asyncio.get_running_loop().run_in_executor(self._pool, work)
        except (imaplib.IMAP4.abort, OSError, EOFError) as error:
            raise ImapError(f"connection: {type(error).__name__}") from None
        except imaplib.IMAP4.error as error:
            raise ImapError(f"refused: {type(error).__name__}") from None

    # ---------------------------------------------------------------- life
    async def open(self) -> None:
        await self._call(self._open)

    def _open(self) -> None:
        imap: imaplib.IMAP4
        if self.security == "ssl":
            imap = imaplib.IMAP4_SSL(
                self.host, self.port, ssl_context=self.ssl_context, timeout=self.timeout
            )
        else:
            imap = imaplib.IMAP4(self.host, self.port, timeout=self.timeout)
            if self.security == "starttls":
                imap.starttls(ssl_context=self.ssl_context)
        self._imap = imap
        try:
            imap.login(self.username, self._password)
        except imaplib.IMAP4.error:
            raise ImapAuthError("login refused") from None
        _typ, data = imap.capability()
        words = b" ".join(d for d in data if isinstance(d, bytes)).decode("ascii", "replace")
        self.capabilities = frozenset(words.upper().split())

    async def close(self) -> None:
        """Log out politely if the connection still works; never raises."""
        self.abort_idle()
        try:
            await asyncio.wait_for(self._call(self._logout), timeout=5)
        except (ImapError, TimeoutError):
            self.abort()
            if self._imap is not None:
                with contextlib.suppress(OSError):
                    self._imap.shutdown()  # closes the socket (logout would have)
        self._pool.shutdown(wait=False, cancel_futures=True)

    def _logout(self) -> None:
        if self._imap is not None:
            self._imap.logout()

    def abort(self) -> None:
        """Cut the connection now (from any thread): a blocked read returns at once."""
        imap = self._imap
        if imap is None:
            return
        with contextlib.suppress(OSError):
            imap.socket().shutdown(socket.SHUT_RDWR)

    @property
    def has_idle(self) -> bool:
        return "IDLE" in self.capabilities

    @property
    def has_move(self) -> bool:
        return "MOVE" in self.capabilities

    def _check(self, typ: str, what: str) -> None:
        if typ != "OK":
            raise ImapError(f"{what}: {typ}")

    @property
    def imap(self) -> imaplib.IMAP4:
        if self._imap is None:
            raise ImapError("not connected")
        return self._imap

    # -------------------------------------------------------------- folders
    async def ensure_folder(self, folder: str) -> None:
        def work() -> None:
            typ, data = self.imap.list('""', _quote(folder))
            if typ == "OK" and any(isinstance(d, bytes) for d in data):
                return
            typ, _ = self.imap.create(_quote(folder))
            if typ != "OK":  # created meanwhile by someone else: look again
                typ, data = self.imap.list('""', _quote(folder))
                self._check("OK" if any(isinstance(d, bytes) for d in data) else "NO", "CREATE")

        await self._call(work)

    async def select(self, folder: str) -> int:
        """Select ``folder``; returns its UIDVALIDITY."""

        def work() -> int:
            typ, _ = self.imap.select(_quote(folder))
            self._check(typ, "SELECT")
            _, data = self.imap.response("UIDVALIDITY")
            value = data[0] if data else None
            if not isinstance(value, bytes):
                raise ImapError("SELECT: no UIDVALIDITY")
            return int(value)

        return await self._call(work)

    async def uids_after(self, last: int) -> list[int]:
        """UIDs above ``last`` in the selected folder, ascending."""

        def work() -> list[int]:
            typ, data = self.imap.uid("SEARCH", f"UID {last + 1}:*")
            self._check(typ, "SEARCH")
            found = b" ".join(d for d in data if isinstance(d, bytes)).split()
            # "n:*" always matches the newest message, even when its UID is below n.
            return sorted(uid for uid in (int(x) for x in found) if uid > last)

        return await self._call(work)

    async def fetch(self, uids: list[int]) -> list[Fetched]:
        def work() -> list[Fetched]:
            typ, data = self.imap.uid("FETCH", _uid_set(uids), "(UID INTERNALDATE BODY.PEEK[])")
            self._check(typ, "FETCH")
            found: list[Fetched] = []
            for item in data:
                if not isinstance(item, tuple) or len(item) < 2:
                    continue
                head, raw = item[0], item[1]
                uid = _UID.search(head)
                if uid is None:
                    continue
                found.append(Fetched(int(uid.group(1)), _arrived(head), bytes(raw)))
            return sorted(found, key=lambda f: f.uid)

        return await self._call(work)

    async def mark_seen(self, uids: list[int]) -> None:
        if not uids:
            return

        def work() -> None:
            typ, _ = self.imap.uid("STORE", _uid_set(uids), "+FLAGS.SILENT", "(\\Seen)")
            self._check(typ, "STORE")

        await self._call(work)

    async def move(self, uids: list[int], folder: str) -> None:
        """Move to ``folder`` (MOVE, else COPY + \\Deleted + UID EXPUNGE or EXPUNGE)."""
        if not uids:
            return

        def work() -> None:
            chosen = _uid_set(uids)
            if self.has_move:
                typ, _ = self.imap.uid("MOVE", chosen, _quote(folder))
                self._check(typ, "MOVE")
                return
            typ, _ = self.imap.uid("COPY", chosen, _quote(folder))
            self._check(typ, "COPY")
            typ, _ = self.imap.uid("STORE", chosen, "+FLAGS.SILENT", "(\\Deleted)")
            self._check(typ, "STORE")
            if "UIDPLUS" in self.capabilities:
                typ, _ = self.imap.uid("EXPUNGE", chosen)
            else:
                typ, _ = self.imap.expunge()
            self._check(typ, "EXPUNGE")

        await self._call(work)

    async def append(self, folder: str, raw: bytes) -> None:
        """Deliver a message into ``folder`` (tests; an operator's tools)."""

        def work() -> None:
            when = imaplib.Time2Internaldate(time.time())
            typ, _ = self.imap.append(_quote(folder), "", when, raw)
            self._check(typ, "APPEND")

        await self._call(work)

    # ----------------------------------------------------------------- IDLE
    def abort_idle(self) -> None:
        self._stop_idle.set()

    async def idle(self, seconds: float = IDLE_CYCLE) -> bool:
        """Wait in IDLE up to ``seconds``; True when the server announced new mail."""
        self._stop_idle.clear()
        return await self._call(lambda: self._idle(seconds))

    def _idle(self, seconds: float) -> bool:
        imap = self.imap
        self._tags += 1
        tag = b"PTEIDLE%d" % self._tags
        imap.send(tag + b" IDLE\r\n")
        line = imap.readline()
        if not line.startswith(b"+"):
            raise ImapError("IDLE refused")
        sock = imap.socket()
        deadline = time.monotonic() + seconds
        arrived = False
        while not arrived and not self._stop_idle.is_set():
            left = deadline - time.monotonic()
            if left <= 0:
                break
            pending = isinstance(sock, ssl.SSLSocket) and sock.pending() > 0
            if not pending:
                readable, _, _ = select.select([sock], [], [], min(left, 0.5))
                if not readable:
                    continue
            line = imap.readline()
            if not line or line.startswith(b"* BYE"):
                raise ImapError("connection closed during IDLE")
            arrived = bool(_EXISTS.match(line))
        imap.send(b"DONE\r\n")
        while True:  # untagged lines may still come before the tagged end of IDLE
            line = imap.readline()
            if not line:
                raise ImapError("connection closed ending IDLE")
            if line.startswith(tag):
                break
            arrived = arrived or bool(_EXISTS.match(line))
        return arrived


def _arrived(head: bytes) -> datetime:
    found = _INTERNALDATE.search(head)
    if found is not None:
        parsed = imaplib.Internaldate2tuple(b'INTERNALDATE "' + found.group(1) + b'"')
        if parsed is not None:
            return datetime.fromtimestamp(time.mktime(parsed), UTC)
    return datetime.now(UTC)
