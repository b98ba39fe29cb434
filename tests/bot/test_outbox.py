"""The outbox worker: order per chat, retries, permanent failures, poison rows, restart."""

from __future__ import annotations

import json
import logging
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from bot.delivery.outbox import OutboxWorker
from bot.delivery.payload import encode
from bot.errors import PermanentDelivery, TransientDelivery
from bot.store.database import OutboxRow, Store
from bot.texts import Texts
from conversations.events import Outbound
from tests.bot.harness import broken
from tests.conftest import AppFactory, StoreOpener
from tests.driver import Driver, FakeClock, MemoryMailer, button_keys
from tests.walks import taken

NOW = datetime(2026, 12, 2, 15, 0, tzinfo=UTC)


class FlakyTransport:
    def __init__(self, failures: list[Exception]) -> None:
        self.failures = failures
        self.delivered: list[str] = []

    async def deliver(self, row: OutboxRow) -> str | None:
        if self.failures:
            raise self.failures.pop(0)
        self.delivered.append(json.loads(row.payload)["key"])
        return None


async def no_sleep(_delay: float) -> None:
    return None


def payload(key: str, edit_ref: str | None = None) -> str:
    body = {"key": key, "data": {}, "qid": 1}
    if edit_ref:
        body["edit_ref"] = edit_ref
    return json.dumps(body)


async def test_transient_failures_are_retried_in_order(
    tmp_path: Path, open_store: StoreOpener
) -> None:
    store = await open_store(tmp_path / "db.sqlite3")
    async with store.transaction(NOW) as tx:
        await tx.enqueue("t", "1", [(payload("a"), False), (payload("b"), False)])
    transport = FlakyTransport([TransientDelivery("429", retry_after=3), TransientDelivery("500")])
    worker = OutboxWorker(store, "t", transport, FakeClock(NOW), sleep=no_sleep)
    await worker.start()  # picks up the committed rows, as after a restart
    await worker.drain()
    assert transport.delivered == ["a", "b"]
    assert await store.pending_outbox("t") == []
    await worker.stop()
    await store.close()


async def test_permanent_failure_is_kept_visible(tmp_path: Path, open_store: StoreOpener) -> None:
    store = await open_store(tmp_path / "db.sqlite3")
    async with store.transaction(NOW) as tx:
        await tx.enqueue("t", "1", [(payload("a"), False), (payload("b"), False)])
    transport = FlakyTransport([PermanentDelivery("blocked")])
    worker = OutboxWorker(store, "t", transport, FakeClock(NOW), sleep=no_sleep)
    await worker.start()  # picks up the committed rows, as after a restart
    await worker.drain()
    assert transport.delivered == ["b"]
    async with store.reading() as conn:
        failed = list(await conn.execute_fetchall("SELECT state, last_error FROM outbox"))
    assert failed[0] == ("failed", "blocked")
    await worker.stop()
    await store.close()


async def test_restart_delivers_pending_rows_but_not_superseded_card_edits(
    tmp_path: Path,
    open_store: StoreOpener,
) -> None:
    store = await open_store(tmp_path / "db.sqlite3")
    async with store.transaction(NOW) as tx:
        await tx.enqueue(
            "t",
            "1",
            [
                (payload("card1", edit_ref="7"), False),
                (payload("note"), False),
                (payload("card2", edit_ref="7"), False),
            ],
        )
    transport = FlakyTransport([])
    worker = OutboxWorker(store, "t", transport, FakeClock(NOW), sleep=no_sleep)
    await worker.start()
    await worker.drain()
    assert transport.delivered == ["note", "card2"]
    assert await store.pending_outbox("t") == []
    await worker.stop()
    await store.close()


# --- poison rows: what raises something that is not a delivery error ---------------------


class RaisingTransport(FlakyTransport):
    """Raises a plain ``Exception`` for the rows whose key is in ``poison`` (always), or for
    every row with ``everything``; delivers the rest."""

    def __init__(self, poison: set[str], everything: bool = False) -> None:
        super().__init__([])
        self.poison = poison
        self.everything = everything
        self.reason = "transport bug"

    async def deliver(self, row: OutboxRow) -> str | None:
        if self.everything or json.loads(row.payload)["key"] in self.poison:
            raise Exception(self.reason)  # not a channel API error
        return await super().deliver(row)


class RecordingSleep:
    def __init__(self) -> None:
        self.delays: list[float] = []

    async def __call__(self, delay: float) -> None:
        self.delays.append(delay)


async def outbox_rows(store: Store) -> list[tuple[int, str, str, int, str | None]]:
    async with store.reading() as conn:
        found = await conn.execute_fetchall(
            "SELECT id, json_extract(payload, '$.key'), state, attempts, last_error FROM outbox"
            " ORDER BY id"
        )
    return [tuple(row) for row in found]  # type: ignore[misc]


def naming(caplog: pytest.LogCaptureFixture, row_id: int) -> list[logging.LogRecord]:
    """Log records at WARNING or above that name outbox row ``row_id``."""
    return [
        r
        for r in caplog.records
        if r.levelno >= logging.WARNING and re.search(rf"\brow {row_id}\b", r.getMessage())
    ]


async def test_a_transport_that_raises_is_retried_then_failed_and_the_chat_goes_on(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, open_store: StoreOpener
) -> None:
    store = await open_store(tmp_path / "db.sqlite3")
    async with store.transaction(NOW) as tx:
        [bad, _] = await tx.enqueue("t", "1", [(payload("a"), False), (payload("b"), False)])
    transport = RaisingTransport({"a"})
    sleep = RecordingSleep()
    worker = OutboxWorker(store, "t", transport, FakeClock(NOW), sleep=sleep)
    caplog.set_level(logging.DEBUG, logger="bot.delivery.outbox")
    await worker.start()
    await worker.drain()
    assert transport.delivered == ["b", "common.undeliverable"]
    # The error's text (it may quote the message) is stored, never logged, even at DEBUG.
    assert not any("transport bug" in r.getMessage() for r in caplog.records)
    assert sleep.delays == [1.0, 2.0]  # three tries, backing off
    [a, b, apology] = await outbox_rows(store)
    assert a == (bad.id, "a", "failed", 3, "Exception: transport bug")
    assert b[2] == apology[2] == "sent"
    [record] = naming(caplog, bad.id)
    assert "template a" in record.getMessage()
    assert "Exception" in record.getMessage()
    await worker.stop()

    # A restart neither sends nor fails it again.
    caplog.clear()
    again = RaisingTransport(set())
    worker = OutboxWorker(store, "t", again, FakeClock(NOW), sleep=sleep)
    await worker.start()
    await worker.drain()
    assert again.delivered == []
    assert await outbox_rows(store) == [a, b, apology]
    assert naming(caplog, bad.id) == []
    await worker.stop()
    await store.close()


async def test_several_poison_rows_of_a_chat_get_one_apology(
    tmp_path: Path, open_store: StoreOpener
) -> None:
    store = await open_store(tmp_path / "db.sqlite3")
    async with store.transaction(NOW) as tx:
        await tx.enqueue(
            "t", "1", [(payload("a"), False), (payload("b"), False), (payload("c"), False)]
        )
        await tx.enqueue("t", "2", [(payload("d"), False)])
    transport = RaisingTransport({"a", "b"})
    worker = OutboxWorker(store, "t", transport, FakeClock(NOW), sleep=no_sleep)
    await worker.start()
    await worker.drain()
    assert sorted(transport.delivered) == ["c", "common.undeliverable", "d"]
    states = [(key, state) for _id, key, state, _n, _e in await outbox_rows(store)]
    assert states == [
        ("a", "failed"),
        ("b", "failed"),
        ("c", "sent"),
        ("d", "sent"),
        ("common.undeliverable", "sent"),
    ]
    await worker.stop()
    await store.close()


async def test_an_apology_that_fails_too_is_not_apologised_for(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, open_store: StoreOpener
) -> None:
    store = await open_store(tmp_path / "db.sqlite3")
    async with store.transaction(NOW) as tx:
        await tx.enqueue("t", "1", [(payload("a"), False)])
    worker = OutboxWorker(
        store, "t", RaisingTransport(set(), everything=True), FakeClock(NOW), sleep=no_sleep
    )
    await worker.start()
    await worker.drain()  # returns: nothing loops
    rows = await outbox_rows(store)
    assert [(key, state, n) for _id, key, state, n, _e in rows] == [
        ("a", "failed", 3),
        ("common.undeliverable", "failed", 3),
    ]
    [record] = naming(caplog, rows[1][0])
    assert "it was the apology" in record.getMessage()
    await worker.stop()
    await store.close()


# --- the same through the app: a template that does not render ------------------------------


async def test_a_reply_that_cannot_render_is_replaced_by_an_apology_with_the_menu(
    make_app: AppFactory, caplog: pytest.LogCaptureFixture
) -> None:
    user = Driver(await make_app())
    await user.start()
    await user.send("/start")
    await user.tap("btn.accept")
    user.app.texts = broken("common.welcome_back")  # what the channel renders with
    shown = await user.send("/start")  # welcome back (broken), then the menu
    menu, apology = shown
    assert menu.key == "menu.main"
    assert apology.plain == Texts().plain("common.undeliverable", {})
    assert button_keys(apology) == ["btn.menu"]
    [again_menu] = await user.tap("btn.menu")
    assert again_menu.key == "menu.main"

    rows = await outbox_rows(user.app.store)
    [failed] = [row for row in rows if row[2] == "failed"]
    assert failed[1:4] == ("common.welcome_back", "failed", 3)
    assert failed[4] == "UndefinedError: 'x' is undefined"
    assert sum(row[1] == "common.undeliverable" for row in rows) == 1
    [record] = naming(caplog, failed[0])
    assert "common.welcome_back" in record.getMessage()
    assert "UndefinedError" in record.getMessage()
    await user.stop()

    # Restarted on the same file: the failed row stays failed, nothing is sent again.
    caplog.clear()
    again = Driver(await make_app())
    await again.start()
    assert again.screen.messages == []
    assert await outbox_rows(again.app.store) == rows
    assert naming(caplog, failed[0]) == []
    await again.stop()


async def test_a_row_with_an_undefined_variable_does_not_block_its_chat(
    make_app: AppFactory,
) -> None:
    user = Driver(await make_app())
    await user.start()
    await user.send("/start")
    async with user.app.store.transaction(user.app.clock.now()) as tx:
        rows = await tx.enqueue(
            "test",
            user.chat_id,
            [
                (encode(Outbound("common.paso", {}), 0, None), False),  # k and n undefined
                (encode(Outbound("common.slow_down"), 0, None), False),
            ],
        )
    before = user.app.clock.now()
    await user.deliver(rows)
    later, apology = user.screen.messages[-2:]
    assert later.key == "common.slow_down"
    assert apology.key == "common.undeliverable"
    assert user.app.clock.now() - before == timedelta(seconds=3)  # backed off 1 s, then 2 s
    await user.stop()


async def test_a_telegram_message_keeps_its_id_only_when_a_reply_can_need_it(
    make_app: AppFactory, mailer: MemoryMailer
) -> None:
    """A reply swiped onto a message about a ticket goes to that ticket, so such a message
    keeps Telegram's id once delivered; no other Telegram message's id is read by anything,
    and none is kept (every turn spares a write to the index outbox_external_ref)."""
    user = Driver(await make_app(), channel="telegram")
    await user.start()
    staff = await taken(user, mailer)
    await staff.tap("btn.desk_reply")
    seen = len(user.screen.messages)
    await staff.send("¿El alcalde firmó digitalmente?")
    message = user.screen.messages[seen]
    assert message.key == "aviso.mensaje"
    await user.reply(message, "Sí, con firma digital.")
    assert staff.screen.last.key == "mesa.respuesta_oficial"
    assert staff.screen.last.data["text"] == "Sí, con firma digital."
    await staff.reply(staff.screen.last, "Recibido, gracias.")  # and the specialist's way
    assert user.screen.last.key == "aviso.mensaje"
    assert user.screen.last.data["message"] == "Recibido, gracias."
    async with user.app.store.reading() as conn:
        rows = await conn.execute_fetchall(
            "SELECT ticket_id IS NOT NULL, external_ref IS NOT NULL, count(*) FROM outbox"
            " WHERE channel = 'telegram' AND state = 'sent' GROUP BY 1, 2"
        )
    assert {(bool(about), bool(kept)): n for about, kept, n in rows}.keys() == {
        (True, True),
        (False, False),
    }
    await staff.stop()
    await user.stop()
