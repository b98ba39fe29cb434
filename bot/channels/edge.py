"""The server's edge: what a connection may cost before anyone has proved who they are.

``pte-bot serve`` faces the internet. Before a request is authenticated it may hold little
memory and little time, and a flood of them is counted, not logged line by line:

* **Connections** are capped (``PTEBOT_HTTP_MAX_CONNECTIONS``). At the cap a new connection
  takes the place of the oldest one that is not in the middle of a request (idle, or still
  sending its headers); only when every connection is busy is the new one refused. So slow
  or idle clients cannot keep /healthz or Meta out, and file descriptors never run out
  (the soft ``RLIMIT_NOFILE`` is raised to the hard one at start and the cap kept below it).
* **Headers** must be complete within :data:`HEADER_TIMEOUT` of the connection's first
  byte (or of the previous response): aiohttp's keep-alive timer closes a connection whose
  request has not been read by then, idle or trickling. A connection that sends nothing has
  no aiohttp protocol yet; :meth:`ConnectionGuard.sweep` closes it HEADER_TIMEOUT after it
  opened.
* **Bodies** are read in chunks within :data:`BODY_TIMEOUT`, never past their limit (the
  declared ``Content-Length`` is refused with 413 before reading), and an unauthenticated
  one (WhatsApp's, signed by its HMAC) is hashed as it streams in: only
  ``PTEBOT_HTTP_MAX_UNVERIFIED`` such bodies are read at once, and beyond that a delivery
  gets 503 at once without its body being read. Every refusal closes the connection.
* **Counts**: refused and evicted connections, time-outs, wrong signatures, oversized and
  malformed bodies, and ``accept()`` failures are added up and logged once a minute
  (:meth:`EdgeStats.report`), with totals on ``/healthz?detail=1``.
"""

from __future__ import annotations

import asyncio
import ctypes
import ctypes.util
import hashlib
import hmac
import logging
import os
import resource
import socket
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web
from aiohttp.web_protocol import RequestHandler

log = logging.getLogger(__name__)

HEADER_TIMEOUT = 10.0  # seconds to complete the headers (see the module's docstring)
BODY_TIMEOUT = 10.0  # seconds to read a whole body
REPORT_EVERY = 60.0  # seconds between two summaries of what the edge refused
QUIET_AFTER = 2.0  # seconds without refusals that end a burst (see give_back_memory)
FD_RESERVE = 256  # descriptors kept for the database, stored files and outgoing calls
# Per connection, what the kernel and aiohttp may buffer of a body nobody has asked for yet:
# the socket's receive buffer (no autotuning to megabytes) and aiohttp's read buffer (it
# stops reading a connection at twice this). A webhook body still streams in at full speed
# once its handler reads it.
RECEIVE_BUFFER = 64 * 1024
READ_BUFSIZE = 16 * 1024
# Connections the kernel completes before we accept them: a burst beyond it has its SYNs
# dropped and retried by the clients a second later, /healthz's and Meta's among them.
BACKLOG = socket.SOMAXCONN
ACCEPT_BATCH = 64

# What each counter means in the summary line (and the keys of /healthz?detail=1).
LABELS = {
    "refused_connections": "connections refused at the cap",
    "evicted_connections": "idle connections closed for a new one",
    "accept_errors": "accept() failures",
    "silent_connections": "connections closed without a request (idle, slow or dropped)",
    "body_timeouts": "bodies not sent in time",
    "unsigned": "deliveries without a signature",
    "bad_signatures": "deliveries with a wrong signature",
    "wrong_secret": "Telegram updates without the secret",
    "too_large": "bodies over the limit",
    "busy": "deliveries refused with 503 (too many bodies being read)",
    "not_deliveries": "signed bodies that are not deliveries",
}


class Refused(Exception):
    """A request refused at the edge: answer ``status`` with no body and close."""

    def __init__(self, status: int, counter: str) -> None:
        super().__init__(counter)
        self.status = status
        self.counter = counter


@dataclass
class EdgeStats:
    """Counters of what the edge refused: the last minute's, and totals since start."""

    window: Counter[str] = field(default_factory=Counter)
    totals: Counter[str] = field(default_factory=Counter)

    def count(self, what: str, n: int = 1) -> None:
        self.window[what] += n
        self.totals[what] += n

    def report(self) -> str | None:
        """One line for what was counted since the last report (None: nothing)."""
        window, self.window = self.window, Counter()
        parts = [f"{n} {LABELS.get(what, what)}" for what, n in sorted(window.items()) if n]
        return "; ".join(parts) if parts else None


def raise_fd_limit() -> int:
    """Raise the soft limit of open files to the hard one; returns the soft limit now."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard == resource.RLIM_INFINITY or soft < hard:
        wanted = hard if hard != resource.RLIM_INFINITY else max(soft, 65536)
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (wanted, hard))
            soft = wanted
        except (ValueError, OSError):
            pass
    return soft


def connection_cap(configured: int, fd_soft_limit: int) -> int:
    """The cap actually enforced: the configured one, below the descriptors available."""
    return max(16, min(configured, fd_soft_limit - FD_RESERVE))


async def listen(
    loop: asyncio.AbstractEventLoop, guard: ConnectionGuard, host: str, port: int
) -> asyncio.Server:
    """The listening sockets, each with a small receive buffer (accepted connections
    inherit it), serving ``guard``.

    asyncio accepts up to its ``backlog`` argument of connections per wake-up and sets all
    of them up before anything else runs: with thousands arriving at once, /healthz would
    wait behind them. So asyncio gets a small batch (:data:`ACCEPT_BATCH`) while the kernel
    queue stays long (:data:`BACKLOG`, set by listening again on the same socket)."""
    server = await loop.create_server(guard, host, port, backlog=ACCEPT_BATCH, start_serving=False)
    for sock in server.sockets:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, RECEIVE_BUFFER)
    await server.start_serving()
    for sock in server.sockets:
        with socket.socket(sock.family, sock.type, fileno=os.dup(sock.fileno())) as same:
            same.listen(BACKLOG)
    return server


class _Connection(asyncio.Protocol):
    """One connection as the guard sees it. aiohttp's protocol for it is made only when
    its first bytes arrive: a connection that never sends anything costs a transport and
    this object, and is closed by :meth:`ConnectionGuard.sweep` after HEADER_TIMEOUT."""

    __slots__ = ("guard", "inner", "opened_at", "transport")

    def __init__(self, guard: ConnectionGuard) -> None:
        self.guard = guard
        self.inner: RequestHandler | None = None
        self.transport: asyncio.Transport | None = None
        self.opened_at = 0.0

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        self.guard.opened(self)

    def data_received(self, data: bytes) -> None:
        if self.inner is None:
            self.inner = self.guard.started(self)
            self.inner.connection_made(self.transport)  # type: ignore[arg-type]
        self.inner.data_received(data)

    def eof_received(self) -> bool | None:
        if self.inner is not None:
            self.inner.eof_received()
        return None  # close the transport: an HTTP client that half-closes is done

    def connection_lost(self, exc: Exception | None) -> None:
        self.guard.closed(self)
        if self.inner is not None:
            self.inner.connection_lost(exc)
        self.transport = None

    def pause_writing(self) -> None:
        if self.inner is not None:
            self.inner.pause_writing()

    def resume_writing(self) -> None:
        if self.inner is not None:
            self.inner.resume_writing()

    def close(self) -> None:
        if self.inner is not None:
            self.inner.force_close()
        elif self.transport is not None:
            self.transport.abort()


class _Refuse(asyncio.Protocol):
    """A connection over the cap: reset at once, nothing read."""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        transport.abort()  # type: ignore[attr-defined]


class ConnectionGuard:
    """Protocol factory around aiohttp's: counts connections, evicts or refuses at the cap,
    and knows which connections are in the middle of a request (see :meth:`middleware`)."""

    def __init__(self, cap: int, stats: EdgeStats) -> None:
        self.make: Callable[[], RequestHandler] | None = None  # aiohttp's, once set up
        self.cap = cap
        self.stats = stats
        self._open: dict[_Connection, None] = {}  # oldest first
        self._of: dict[RequestHandler, _Connection] = {}
        self._busy: set[_Connection] = set()  # handling a request right now
        self._served: set[_Connection] = set()  # had at least one request

    @property
    def open_connections(self) -> int:
        return len(self._open)

    def __call__(self) -> asyncio.Protocol:
        if len(self._open) >= self.cap and not self._evict_one():
            self.stats.count("refused_connections")
            return _Refuse()
        return _Connection(self)

    def opened(self, connection: _Connection) -> None:
        connection.opened_at = time.monotonic()
        self._open[connection] = None

    def started(self, connection: _Connection) -> RequestHandler:
        assert self.make is not None, "the guard serves aiohttp's protocol once set up"
        handler = self.make()
        self._of[handler] = connection
        return handler

    def closed(self, connection: _Connection) -> None:
        if connection in self._open and connection not in self._served:
            self.stats.count("silent_connections")  # evicted ones were counted already
        self._open.pop(connection, None)
        if connection.inner is not None:
            self._of.pop(connection.inner, None)
        self._busy.discard(connection)
        self._served.discard(connection)

    def _evict_one(self) -> bool:
        for connection in self._open:
            if connection not in self._busy:
                self.stats.count("evicted_connections")
                self._open.pop(connection)
                connection.close()
                return True
        return False

    def sweep(self) -> None:
        """Close the connections that sent nothing within HEADER_TIMEOUT (those that sent
        something are aiohttp's: its keep-alive timer does the same for them)."""
        deadline = time.monotonic() - HEADER_TIMEOUT
        silent = []
        for connection in self._open:
            if connection.opened_at > deadline:
                break  # the rest are younger
            if connection.inner is None:
                silent.append(connection)
        for connection in silent:
            connection.close()

    def close_all(self) -> None:
        """At shutdown: the connections aiohttp does not know yet (nothing received)."""
        for connection in list(self._open):
            connection.close()

    async def sweep_every_second(self) -> None:
        while True:
            await asyncio.sleep(1.0)
            self.sweep()

    @web.middleware
    async def middleware(
        self, request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
    ) -> web.StreamResponse:
        connection = self._of.get(request.protocol)
        if connection is not None:  # None: the client is already gone
            self._busy.add(connection)
            self._served.add(connection)
        try:
            return await handler(request)
        except Refused as refused:
            self.stats.count(refused.counter)
            response = web.Response(status=refused.status)
            response.force_close()
            return response
        finally:
            if connection is not None:
                self._busy.discard(connection)


class UnverifiedBodies:
    """How many unauthenticated bodies are being read right now, up to a cap."""

    def __init__(self, cap: int) -> None:
        self.cap = cap
        self.reading = 0

    def __enter__(self) -> UnverifiedBodies:
        if self.reading >= self.cap:
            raise Refused(503, "busy")
        self.reading += 1
        return self

    def __exit__(self, *exc: object) -> None:
        self.reading -= 1


def declared_size(request: web.Request, limit: int) -> None:
    """Refuse a body whose declared length is over ``limit`` before reading any of it."""
    length = request.content_length
    if length is not None and length > limit:
        raise Refused(413, "too_large")


async def read_body(request: web.Request, limit: int, mac: Any = None) -> bytes:
    """The body, read in chunks within :data:`BODY_TIMEOUT` and never past ``limit``; each
    chunk also goes into ``mac`` (an ``hmac`` object) as it arrives."""
    declared_size(request, limit)
    chunks: list[bytes] = []
    total = 0
    try:
        async with asyncio.timeout(BODY_TIMEOUT):
            while True:
                chunk = await request.content.readany()
                if not chunk:
                    break
                total += len(chunk)
                if total > limit:
                    raise Refused(413, "too_large")
                if mac is not None:
                    mac.update(chunk)
                chunks.append(chunk)
    except TimeoutError:
        raise Refused(408, "body_timeouts") from None
    return b"".join(chunks)


def hub_signature(header: str | None) -> bytes | None:
    """The 32-byte digest in ``X-Hub-Signature-256: sha256=<64 hex>``; None if malformed."""
    if header is None:
        return None
    scheme, _, digest = header.strip().partition("=")
    if scheme != "sha256" or len(digest) != 64:
        return None
    try:
        return bytes.fromhex(digest)
    except ValueError:
        return None


async def read_signed(
    request: web.Request, secret: bytes, limit: int, unverified: UnverifiedBodies
) -> bytes:
    """A body whose ``X-Hub-Signature-256`` is the HMAC-SHA256 of it with ``secret``,
    computed as it streams in: 401 without the header, 403 when it is malformed or wrong
    (a malformed one without reading the body), 413 over ``limit``, 503 when too many
    unauthenticated bodies are being read already."""
    header = request.headers.get("X-Hub-Signature-256")
    if not header:
        raise Refused(401, "unsigned")
    expected = hub_signature(header)
    if expected is None:
        raise Refused(403, "bad_signatures")
    declared_size(request, limit)
    with unverified:
        mac = hmac.new(secret, digestmod=hashlib.sha256)
        body = await read_body(request, limit, mac)
    if not hmac.compare_digest(mac.digest(), expected):
        raise Refused(403, "bad_signatures")
    return body


def count_accept_errors(loop: asyncio.AbstractEventLoop, stats: EdgeStats) -> None:
    """Count ``accept()`` failures (descriptors run out) instead of logging a traceback
    for each; anything else goes to the handler that was there."""
    previous = loop.get_exception_handler()

    def handler(loop: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
        message = str(context.get("message", ""))
        if message.startswith("socket.accept() out of system resource"):
            stats.count("accept_errors")
            return
        if previous is not None:
            previous(loop, context)
        else:
            loop.default_exception_handler(context)

    loop.set_exception_handler(handler)


async def report_every_minute(stats: EdgeStats, every: float = REPORT_EVERY) -> None:
    while True:
        await asyncio.sleep(every)
        line = stats.report()
        if line:
            log.warning("refused at the edge in the last minute: %s", line)


def _malloc_trim() -> Callable[[], object] | None:
    """glibc's ``malloc_trim(0)``, or None where the C library has none (musl, macOS)."""
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        trim = libc.malloc_trim
    except (OSError, AttributeError):
        return None
    trim.argtypes = [ctypes.c_size_t]
    return lambda: trim(0)


async def give_back_memory(stats: EdgeStats, every: float = QUIET_AFTER) -> None:
    """Once a burst of refusals is over, return the freed heap to the system.

    Thousands of connections refused at once leave glibc's heap full of free holes that it
    keeps (RSS stays up long after the connections closed); ``malloc_trim`` hands those
    pages back. It runs once per burst, when a check finds nothing new counted."""
    trim = _malloc_trim()
    if trim is None:
        return
    seen = busy = 0
    while True:
        await asyncio.sleep(every)
        total = sum(stats.totals.values())
        if total != seen:
            seen, busy = total, 1
        elif busy:
            busy = 0
            trim()
