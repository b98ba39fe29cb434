"""The WhatsApp harness: the fake Graph API on loopback and ``pte-bot serve``'s server started
in-process on the test's settings, with Meta's webhooks pointed at it.

Test modules import the fixtures they use (``graph``, ``wa_settings``, ``wa_server``).
"""

from __future__ import annotations

import contextlib
import sqlite3
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest

from bot.channels.server import Server, build_server
from bot.settings import Settings
from tests.bot.telegram_harness import ENTITY, OFFICER_EMAIL, PDF, RESOLUTION, RESOLUTION_DATE, RUC
from tests.conftest import AppFactory
from tests.driver import FakeClock, MemoryMailer
from tests.fakes.graph_api import FakeGraphAPI, FakeWhatsAppUser, Sent

VERIFY_TOKEN = "verify-me-please"
HELP_DESK = "mesadeayuda@example.gob.pe"


@pytest.fixture
async def graph() -> AsyncIterator[FakeGraphAPI]:
    async with FakeGraphAPI() as api:
        yield api


def whatsapp_settings(tmp_path: Path, graph: FakeGraphAPI, **extra: Any) -> Settings:
    return Settings(  # type: ignore[call-arg]
        data_dir=tmp_path / "data",
        whatsapp_token=graph.token,
        whatsapp_phone_number_id=graph.phone_number_id,
        whatsapp_app_secret=graph.app_secret,
        whatsapp_verify_token=VERIFY_TOKEN,
        whatsapp_graph_url=graph.base_url,
        http_port=0,
        helpdesk_email=HELP_DESK,
        _env_file=None,
        **extra,
    )


@contextlib.asynccontextmanager
async def serving(
    make_app: AppFactory, graph: FakeGraphAPI, clock: FakeClock
) -> AsyncIterator[Server]:
    """One run of ``pte-bot serve`` with WhatsApp on, the fake posting its webhooks to it
    (used twice in a test: a restart)."""
    server = await build_server(await make_app())
    graph.settled = settled(server)
    [address, *_] = await server.start()
    graph.webhook_url = f"{address}/webhooks/whatsapp"
    graph.clock = lambda: clock.now().timestamp()  # Meta's timestamps on the test's clock
    try:
        yield server
    finally:
        await server.stop()


@pytest.fixture
async def wa_server(
    make_app: AppFactory, graph: FakeGraphAPI, clock: FakeClock, settings: Settings
) -> AsyncIterator[Server]:
    """``pte-bot serve`` with WhatsApp on; the fake posts its webhooks to it."""
    async with serving(make_app, graph, clock) as server:
        yield server


def settled(server: Server) -> Callable[[], Awaitable[None]]:
    """For the fake's settle(): ``server`` has run every delivery it acknowledged, and its
    outbox worker has delivered (or held, or failed) and marked every row it was given."""

    async def wait() -> None:
        channel = server.whatsapp
        assert channel is not None
        await channel.dispatcher.join()
        await channel.worker.drain()

    return wait


def query(settings: Settings, sql: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Read the bot's SQLite file directly, read-only."""
    uri = f"file:{settings.database_path}?mode=ro"
    with contextlib.closing(sqlite3.connect(uri, uri=True)) as conn:
        return list(conn.execute(sql, params).fetchall())


def refused(graph: FakeGraphAPI) -> list[str]:
    return [str(call) for call in graph.calls if call.status != 200]


# --- the request's happy path, as an officer on WhatsApp -----------------------------------
ANA = "51987654321"  # the officer's WhatsApp number


async def mailed_code(mailer: MemoryMailer, timeout: float = 10.0) -> str:  # noqa: ASYNC109
    """The code in the verification mail, once the mail outbox has sent it."""
    assert await mailer.wait_for(timeout=timeout), "no verification mail was sent"
    return mailer.last_code()


Action = Callable[[FakeWhatsAppUser, MemoryMailer], Awaitable[list[Sent]]]

# (what the officer does, the text that must follow). Every answer is followed by the next
# question; the share-number button is WhatsApp's "Compartir mi número".
STEPS: list[tuple[str, Action, str]] = [
    ("start", lambda u, m: u.say("hola", n=2), "¿Aceptas?"),
    ("consent", lambda u, m: u.tap("Acepto"), "¿Qué necesitas hacer?"),
    ("menu", lambda u, m: u.tap("Solicitar accesos al PTE"), "Paso 1 de 16"),
    ("ruc", lambda u, m: u.say(RUC), "Paso 2 de 16"),
    ("entidad", lambda u, m: u.say(ENTITY), "Paso 3 de 16"),
    ("nombres", lambda u, m: u.say("Ana María"), "Paso 4 de 16"),
    ("apellidos", lambda u, m: u.say("Pérez Ruiz"), "Paso 5 de 16"),
    ("dni", lambda u, m: u.say("45678912"), "Paso 6 de 16"),
    ("cargo", lambda u, m: u.say("Jefa de Tecnologías de la Información"), "Paso 7 de 16"),
    ("correo", lambda u, m: u.say(OFFICER_EMAIL), "Paso 8 de 16"),
    ("codigo", lambda u, m: _type_code(u, m), "Paso 9 de 16"),
    ("celular", lambda u, m: u.tap("Compartir mi número"), "Paso 10 de 16"),
    ("res_numero", lambda u, m: u.say(RESOLUTION), "Paso 11 de 16"),
    ("res_fecha", lambda u, m: u.say(RESOLUTION_DATE), "Paso 12 de 16"),
    ("res_autoridad", lambda u, m: u.tap("Alcalde o alcaldesa"), "Paso 13 de 16"),
    ("res_pdf", lambda u, m: _send_pdf(u), "Paso 14 de 16"),
    ("justicia", lambda u, m: u.tap("No"), "Paso 15 de 16"),
    ("perfiles_modo", lambda u, m: u.tap("Yo"), "Paso 16 de 16"),
]


async def _type_code(user: FakeWhatsAppUser, mailer: MemoryMailer) -> list[Sent]:
    return await user.say(await mailed_code(mailer))


async def _send_pdf(user: FakeWhatsAppUser) -> list[Sent]:
    await user.send_document(PDF, "Resolución 045-2026.pdf")
    return await user.expect(1)
