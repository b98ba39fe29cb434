"""Issue 14, point 7: after /borrar_mis_datos nothing of the person (names, DNI, email,
phone, chat id) is left in any table or file outside the tickets, which stay as the help
desk's administrative records; before erasing, the officer is told that open tickets will
no longer be followed in the chat."""

from __future__ import annotations

import contextlib
import json
import sqlite3
from pathlib import Path

import pytest

from bot.channels.server import Server
from bot.settings import Settings
from tests.bot.harness import TeeMailer, mailer_done
from tests.bot.telegram_harness import ENTITY, OFFICER_EMAIL, RUC
from tests.bot.whatsapp_harness import STEPS, query, whatsapp_settings
from tests.bot.whatsapp_harness import graph as graph  # a fixture
from tests.bot.whatsapp_harness import wa_server as wa_server  # a fixture
from tests.conftest import AppFactory
from tests.driver import Driver, FakeClock
from tests.fakes.graph_api import FakeGraphAPI

ANA = "51987654321"
ROSA = "51911111111"  # a specialist, on WhatsApp too
KEPT_TABLES = {"tickets", "ticket_events", "ticket_files"}  # the administrative records
# What names Ana: her names, DNI, email, and her number (also her WhatsApp chat id).
ANA_IS = ["Ana María", "Pérez Ruiz", "45678912", OFFICER_EMAIL, ANA]


@pytest.fixture
def settings(tmp_path: Path, graph: FakeGraphAPI) -> Settings:
    return whatsapp_settings(tmp_path, graph, staff_whatsapp_ids=frozenset({ROSA}))


@pytest.fixture
def mailer(settings: Settings) -> TeeMailer:
    return TeeMailer(settings.data_dir / "outbox")


def mentions(value: object) -> list[str]:
    if isinstance(value, bytes):
        return [mark for mark in ANA_IS if mark.encode() in value]
    if isinstance(value, str):
        return [mark for mark in ANA_IS if mark in value]
    return []


def left_in_tables(database: Path) -> dict[str, list[str]]:
    """Every table but the tickets', every row and column: where Ana is still named."""
    found: dict[str, list[str]] = {}
    with contextlib.closing(sqlite3.connect(f"file:{database}?mode=ro", uri=True)) as db:
        tables = [
            name for (name,) in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")
        ]
        for table in tables:
            if table in KEPT_TABLES:
                continue
            columns = [c[1] for c in db.execute(f"PRAGMA table_info({table})")]
            for row in db.execute(f"SELECT * FROM {table}"):
                for column, value in zip(columns, row, strict=True):
                    for mark in mentions(value):
                        found.setdefault(f"{table}.{column}", []).append(mark)
    return found


def left_in_files(data: Path, ticket_files: set[str]) -> dict[str, list[str]]:
    """Every file of the data directory but the database and the tickets' own files."""
    found: dict[str, list[str]] = {}
    for path in data.rglob("*"):
        if not path.is_file() or path.name.startswith("ptebot.sqlite3"):
            continue
        if path.name in ticket_files:
            continue
        marks = mentions(path.read_bytes())
        if marks:
            found[str(path.relative_to(data))] = marks
    return found


async def test_erasure_leaves_nothing_of_the_person_outside_the_tickets(
    graph: FakeGraphAPI,
    settings: Settings,
    mailer: TeeMailer,
    wa_server: Server,
    clock: FakeClock,
) -> None:
    ana, rosa = graph.user(ANA, "Ana"), graph.user(ROSA, "Rosa")
    for _name, action, _follows in STEPS:
        await action(ana, mailer)
    registered, _formato, _menu = await ana.tap("✅ Confirmar y enviar", n=3)
    [(number,)] = query(settings, "SELECT number FROM tickets")
    [card] = await rosa.say(f"/ticket {number}")  # staff saw her data on the card
    assert "45678912" in card.text
    await graph.status(registered, "read")  # Meta's statuses of messages to her
    await mailer_done(wa_server.app, 2)  # the code and the request, as .eml files
    app = wa_server.app
    async with app.store.reading() as conn:  # a delivery of hers an older release set aside
        await conn.execute(
            "INSERT INTO webhook_inbox (channel, body, received_at, failed_at, error)"
            " VALUES ('whatsapp', ?, '2026-12-01', '2026-12-01', 'AttributeError')",
            (json.dumps({"entry": [{"from": ANA}]}).encode(),),
        )
    # A new draft with data never submitted: her name typed again.
    await ana.tap("Solicitar accesos al PTE")
    await ana.say(RUC)
    await ana.say(ENTITY)
    await ana.say("Ana María")
    database = settings.data_dir / "ptebot.sqlite3"
    assert left_in_tables(database) != {}  # she is everywhere before

    [ask] = await ana.say("/borrar_mis_datos")
    assert f"Tu trámite {number} sigue abierto y ya no se seguirá por este chat" in ask.text
    assert "se conservan como registros administrativos" in ask.text
    [done] = await ana.tap("Sí, borrar mis datos")
    assert "borré tus datos" in done.text
    assert wa_server.whatsapp is not None
    await wa_server.whatsapp.dispatcher.join()
    await wa_server.whatsapp.worker.drain()

    assert left_in_tables(database) == {}
    ticket_files = {sha for (sha,) in query(settings, "SELECT sha256 FROM ticket_files")}
    assert left_in_files(settings.data_dir, ticket_files) == {}
    assert list((settings.data_dir / "outbox").glob("*.eml")) == []

    # The ticket stays, whole, as the help desk's record; the desk still opens it.
    [(data,)] = query(settings, "SELECT data FROM tickets")
    assert json.loads(data)["resp"]["dni"] == "45678912"
    [card] = await rosa.say(f"/ticket {number}")
    assert "45678912" in card.text
    # The same number writing again is someone new, asked for consent.
    _greeting, notice = await ana.say("hola", n=2)
    assert notice.labels[:2] == ["Acepto", "No acepto"]


async def test_the_confirmation_is_deleted_once_delivered(make_app: AppFactory) -> None:
    """On any channel (here the driver's): no row keeps the erased chat's id."""
    app = await make_app()
    user = Driver(app, chat_id="7001234567")
    await user.start()
    try:
        await user.send("/start")
        await user.tap("btn.accept")
        await user.send("/borrar_mis_datos")
        await user.tap("btn.erase_yes")
        await user.worker.drain()
        async with app.store.reading() as conn:
            rows = list(await conn.execute_fetchall("SELECT chat_id, forget FROM outbox"))
            ids = list(await conn.execute_fetchall("SELECT external_id FROM chat_identities"))
        assert rows == []  # the confirmation too, once delivered
        assert [i for (i,) in ids] == ["borrado:1"]
    finally:
        await user.stop()


async def test_a_row_of_an_erased_chat_that_cannot_be_sent_goes_without_an_apology(
    make_app: AppFactory, clock: FakeClock
) -> None:
    app = await make_app()
    async with app.store.transaction(clock.now()) as tx:
        tx.forgetting = ("telegram", "7001234567")
        [row] = await tx.enqueue(
            "telegram", "7001234567", [('{"key": "mis_datos.erased"}', False)]
        )
    apology = '{"key": "common.error"}'
    assert await app.store.fail_delivery(row.id, "TemplateError", clock.now(), apology) == []
    async with app.store.reading() as conn:
        assert list(await conn.execute_fetchall("SELECT count(*) FROM outbox")) == [(0,)]
