"""The edge of ``pte-bot serve`` (issue 14, points 1 and 2): what a request may cost before it
is authenticated. Bodies are limited, hashed as they stream in and read a few at a time;
headers and bodies have time limits; connections are capped (idle ones make room); what is
refused is counted and logged once a minute, not line by line."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import json
import logging
import time
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest

from bot.channels import edge
from bot.channels.server import WHATSAPP_BODY_LIMIT, Server, build_server
from bot.settings import Settings
from tests.bot.whatsapp_harness import graph as graph  # a fixture
from tests.bot.whatsapp_harness import query, whatsapp_settings
from tests.conftest import AppFactory
from tests.driver import FakeClock
from tests.fakes.graph_api import FakeGraphAPI

ANA = "51987654321"
PATH = "/webhooks/whatsapp"


@pytest.fixture
def settings(tmp_path: Path, graph: FakeGraphAPI) -> Settings:
    return whatsapp_settings(tmp_path, graph, http_max_connections=16, http_max_unverified=2)


@pytest.fixture
async def server(
    make_app: AppFactory, graph: FakeGraphAPI, clock: FakeClock
) -> AsyncIterator[Server]:
    app = await make_app()
    server = await build_server(app)
    [address, *_] = await server.start()
    graph.webhook_url = f"{address}{PATH}"
    graph.clock = lambda: clock.now().timestamp()
    try:
        yield server
    finally:
        await server.stop()


def port_of(graph: FakeGraphAPI) -> int:
    assert graph.webhook_url is not None
    return int(graph.webhook_url.split(":")[2].split("/")[0])


def head(length: int, signature: str = "sha256=" + "ab" * 32) -> bytes:
    return (
        f"POST {PATH} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
        f"Content-Length: {length}\r\nX-Hub-Signature-256: {signature}\r\n\r\n"
    ).encode()


class Clients:
    """Raw connections to the server, all closed at the end of the test."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.opened: list[asyncio.StreamWriter] = []

    async def open(self) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        reader, writer = await asyncio.open_connection("127.0.0.1", self.port)
        self.opened.append(writer)
        return reader, writer

    async def close(self) -> None:
        for writer in self.opened:
            writer.close()
            with contextlib.suppress(OSError):
                await writer.wait_closed()


@pytest.fixture
async def clients(graph: FakeGraphAPI, server: Server) -> AsyncIterator[Clients]:
    opened = Clients(port_of(graph))
    try:
        yield opened
    finally:
        await opened.close()


async def reading(server: Server, bodies: int) -> None:
    """Wait until the server reads ``bodies`` unverified bodies at once."""
    for _ in range(500):
        if server.unverified.reading >= bodies:
            return
        await asyncio.sleep(0.01)
    raise AssertionError(f"the server reads {server.unverified.reading} bodies")


async def status_of(reader: asyncio.StreamReader, within: float = 5.0) -> int | None:
    """The response's status, or None when the server closed without one."""
    line = await asyncio.wait_for(reader.readline(), within)
    return int(line.split()[1]) if line else None


async def test_what_is_refused_before_the_signature_is_checked_is_never_stored(
    graph: FakeGraphAPI, settings: Settings, server: Server, clients: Clients
) -> None:
    payload = graph.envelope(messages=[])
    assert await graph.deliver(payload, signature=None) == (401, "")
    assert await graph.deliver(payload, signature="sha256=00") == (403, "")  # malformed
    assert await graph.deliver(payload, signature="sha256=" + "0" * 64) == (403, "")

    # Declared over Meta's 3 MB: refused before a byte of the body is read.
    reader, writer = await clients.open()
    writer.write(head(WHATSAPP_BODY_LIMIT + 1))
    started = time.monotonic()
    assert await status_of(reader) == 413
    assert time.monotonic() - started < 1

    # Chunked (no length declared): cut at the limit while it streams.
    async def endless() -> AsyncIterator[bytes]:
        for _ in range(WHATSAPP_BODY_LIMIT // 65536 + 8):
            yield b"x" * 65536

    async with aiohttp.ClientSession() as session:
        headers = {"X-Hub-Signature-256": "sha256=" + "0" * 64}
        try:
            async with session.post(graph.webhook_url or "", data=endless(), headers=headers) as r:
                assert r.status == 413
        except aiohttp.ClientError:
            pass  # the server may close while the client still sends: also a refusal
    assert query(settings, "SELECT count(*) FROM webhook_inbox") == [(0,)]
    totals = server.stats.totals
    assert totals["unsigned"] == 1
    assert totals["bad_signatures"] == 2
    assert totals["too_large"] >= 1


async def test_the_signature_is_the_hmac_of_the_streamed_body(
    graph: FakeGraphAPI, server: Server, clients: Clients
) -> None:
    """A genuine delivery sent in many small pieces is accepted, a one-byte change refused."""
    ana = graph.user(ANA)
    message = {"from": ANA, "id": "wamid.S1", "timestamp": str(int(graph.clock())), "type": "text"}
    message["text"] = {"body": "hola " + "x" * 200_000}  # type: ignore[assignment]
    body = json.dumps(graph.envelope(messages=[message], user=ana)).encode()
    digest = hmac.new(graph.app_secret.encode(), body, hashlib.sha256).hexdigest()
    for sent, expected in ((body.replace(b"hola", b"HOLA"), 403), (body, 200)):
        reader, writer = await clients.open()
        writer.write(head(len(sent), f"sha256={digest}"))
        for start in range(0, len(sent), 7_000):
            writer.write(sent[start : start + 7_000])
            await writer.drain()
        assert await status_of(reader) == expected
    await ana.expect(2)


async def test_only_a_few_unverified_bodies_are_read_at_once_and_the_next_gets_503_at_once(
    settings: Settings, server: Server, clients: Clients
) -> None:
    slow = [await clients.open() for _ in range(2)]
    for _reader, writer in slow:
        writer.write(head(100_000) + b"x" * 1000)  # a body that takes its time
        await writer.drain()
    await reading(server, 2)
    assert server.unverified.reading == 2  # PTEBOT_HTTP_MAX_UNVERIFIED=2

    reader, writer = await clients.open()
    started = time.monotonic()
    writer.write(head(100_000) + b"x" * 1000)
    assert await status_of(reader) == 503
    assert time.monotonic() - started < 1  # at once, without waiting for its body

    for reader, writer in slow:  # the two finish: hashed, refused, their slots free again
        writer.write(b"x" * 99_000)
        assert await status_of(reader) == 403
    assert server.unverified.reading == 0
    assert server.stats.totals["busy"] == 1
    assert query(settings, "SELECT count(*) FROM webhook_inbox") == [(0,)]


async def test_a_body_sent_too_slowly_gets_408(
    server: Server, clients: Clients, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(edge, "BODY_TIMEOUT", 0.3)
    reader, writer = await clients.open()
    writer.write(head(1000) + b"x" * 10)
    assert await status_of(reader) == 408
    await asyncio.wait_for(reader.read(), 5)  # and closed after the answer
    assert server.stats.totals["body_timeouts"] == 1
    assert server.unverified.reading == 0


async def test_connections_without_complete_headers_are_closed_after_the_timeout(
    make_app: AppFactory, graph: FakeGraphAPI, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(edge, "HEADER_TIMEOUT", 0.5)
    app = await make_app()
    server = await build_server(app)
    [address, *_] = await server.start()
    clients = Clients(int(address.rsplit(":", 1)[1]))
    try:
        idle = await clients.open()  # sends nothing at all
        trickle = await clients.open()
        trickle[1].write(b"POST /webhooks/whatsapp HTTP/1.1\r\nHost: x\r\n")  # never ends
        started = time.monotonic()
        for reader, _writer in (idle, trickle):
            assert await asyncio.wait_for(reader.read(), 5) == b""  # closed by the server
        assert time.monotonic() - started < 3
        assert server.guard.open_connections == 0
        assert server.stats.totals["silent_connections"] == 2
    finally:
        await clients.close()
        await server.stop()


async def test_at_the_cap_idle_connections_make_room_and_health_answers(
    graph: FakeGraphAPI, server: Server, clients: Clients
) -> None:
    port = port_of(graph)
    idle = [await clients.open() for _ in range(40)]
    await asyncio.sleep(0.2)
    assert server.guard.open_connections <= 16  # PTEBOT_HTTP_MAX_CONNECTIONS=16
    started = time.monotonic()
    async with (
        aiohttp.ClientSession() as session,
        session.get(f"http://127.0.0.1:{port}/healthz?detail=1") as response,
    ):
        assert response.status == 200
        detail = await response.json()
    assert time.monotonic() - started < 1
    assert detail["connections"]["cap"] == 16
    assert server.stats.totals["evicted_connections"] >= 24
    closed = 0
    for reader, _writer in idle[:25]:  # the oldest ones were closed to make room
        with contextlib.suppress(ConnectionError):
            closed += await asyncio.wait_for(reader.read(), 1) == b""
    assert closed == 25


async def test_a_connection_is_refused_only_when_every_one_is_busy(
    server: Server, clients: Clients, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(server.guard, "cap", 2)
    busy = [await clients.open() for _ in range(2)]
    for _reader, writer in busy:
        writer.write(head(100_000) + b"x")  # both are reading a body: busy
    await reading(server, 2)
    reader, _writer = await clients.open()
    with contextlib.suppress(ConnectionError):  # reset: there is nothing to make room
        assert await asyncio.wait_for(reader.read(), 5) == b""
    assert server.stats.totals["refused_connections"] == 1
    assert server.stats.totals["evicted_connections"] == 0


async def test_refusals_are_counted_and_logged_once_a_minute_not_one_by_one(
    graph: FakeGraphAPI, server: Server, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="bot")
    caplog.set_level(logging.INFO, logger="aiohttp")
    for _ in range(30):
        await graph.deliver(graph.envelope(messages=[]), signature="sha256=" + "1" * 64)
        await graph.deliver(graph.envelope(messages=[]), signature=None)
    assert [r for r in caplog.records if r.levelno >= logging.INFO] == []

    stats = edge.EdgeStats()
    stats.count("bad_signatures", 30)
    stats.count("unsigned", 30)
    reporter = asyncio.create_task(edge.report_every_minute(stats, every=0.05))
    await asyncio.sleep(0.3)
    reporter.cancel()
    lines = [r.getMessage() for r in caplog.records if r.name == "bot.channels.edge"]
    assert lines == [
        "refused at the edge in the last minute: 30 deliveries with a wrong signature;"
        " 30 deliveries without a signature"
    ]
    assert server.stats.totals["bad_signatures"] == 30


def test_the_cap_stays_below_the_open_files_limit() -> None:
    assert edge.connection_cap(1000, 20000) == 1000
    assert edge.connection_cap(1000, 1024) == 1024 - edge.FD_RESERVE
    assert edge.raise_fd_limit() >= 1024
