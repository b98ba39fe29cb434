"""A reply's acknowledgement goes in one message with the question after it (issue 18).

At the outbox: which rows join (text-only rows into the next row of the same reply, up to
the transport's limit; never a document, a card edited in place, another reply's row) and
that every joined row shares the message's fate. At the Telegram adapter: the fake Bot API
sees ONE sendMessage with both texts, and a pair too long for one message goes as two.
"""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from bot.app import create_app
from bot.channels.telegram import TelegramChannel, run_polling
from bot.channels.telegram_transport import MESSAGE_LIMIT
from bot.delivery.outbox import OutboxWorker
from bot.delivery.payload import Rendered, Renders, encode, join, render
from bot.errors import PermanentDelivery
from bot.settings import Settings
from bot.store.database import OutboxRow
from bot.texts import NO_CAPABILITIES, Texts
from conversations.events import Choice, Outbound, rows
from tests.bot.conftest import Starter
from tests.conftest import StoreOpener
from tests.driver import FakeClock
from tests.fakes.telegram_api import FakeBotAPI

NOW = datetime(2026, 12, 2, 15, 0, tzinfo=UTC)


@pytest.fixture
def settings(tmp_path: Path, api: FakeBotAPI) -> Settings:
    return Settings(  # type: ignore[call-arg]
        data_dir=tmp_path / "data",
        telegram_bot_token=api.token,
        telegram_base_url=api.base_url,
        telegram_base_file_url=api.base_file_url,
        _env_file=None,
    )


def payload(key: str, **extra: Any) -> str:
    return json.dumps({"key": key, "data": {}, "qid": 1, **extra})


def keys(payload: str) -> list[str]:
    body = json.loads(payload)
    return [lead["key"] for lead in body.get("lead", [])] + [body["key"]]


class JoiningTransport:
    """Joins while the joined keys are at most ``limit``; records what it sends."""

    def __init__(self, limit: int = 3, fail: Exception | None = None) -> None:
        self.limit = limit
        self.fail = fail
        self.sent: list[list[str]] = []

    def joins(self, row: OutboxRow) -> bool:
        return len(keys(row.payload)) <= self.limit

    async def deliver(self, row: OutboxRow) -> str | None:
        if self.fail is not None:
            raise self.fail
        self.sent.append(keys(row.payload))
        return str(len(self.sent))


async def no_sleep(_delay: float) -> None:
    return None


async def deliver(
    tmp_path: Path, replies: list[list[str]], transport: JoiningTransport, open_store: StoreOpener
) -> list[tuple[str, str | None]]:
    store = await open_store(tmp_path / "db.sqlite3")
    worker = OutboxWorker(store, "t", transport, FakeClock(NOW), sleep=no_sleep)
    await worker.start()
    for reply in replies:
        async with store.transaction(NOW) as tx:
            rows = await tx.enqueue("t", "1", [(p, False) for p in reply])
        worker.submit(rows)
    await worker.drain()
    await worker.stop()
    async with store.reading() as conn:
        states = await conn.execute_fetchall("SELECT state, external_ref FROM outbox ORDER BY id")
    await store.close()
    return [(state, ref) for state, ref in states]


def test_join_takes_text_only_rows_in_front_of_a_message_that_is_its_own() -> None:
    ack, menu = payload("consent.accepted"), payload("menu.main", choices=[[["a", "x", {}]]])
    joined = join(ack, menu)
    assert joined is not None
    assert keys(joined) == ["consent.accepted", "menu.main"]
    assert join(menu, ack) is None  # a message with buttons keeps them where they are
    assert join(ack, payload("card", edit_ref="7")) is None  # an edit replaces a card's text
    assert join(ack, payload("formato", document={"sha256": "0"})) is None  # a caption
    assert join(payload("warn", remove_keyboard=True), menu) is None


def test_a_joined_message_reads_the_acknowledgement_then_the_question() -> None:
    texts = Texts()
    notice = json.dumps(
        {"key": "consent.notice", "data": {"version": "1"}, "qid": 3, "choices": []}
    )
    joined = join(payload("consent.welcome"), notice)
    assert joined is not None
    alone = [render(texts, p).html for p in (payload("consent.welcome"), notice)]
    assert render(texts, joined).html == "\n\n".join(alone)  # not a word lost


def test_a_joined_message_is_rendered_once_for_its_measure_and_its_delivery() -> None:
    renders, texts = Renders(NO_CAPABILITIES), Texts()
    notice = json.dumps({"key": "consent.notice", "data": {"version": "1"}, "qid": 3})
    joined = join(payload("consent.welcome"), notice)
    assert joined is not None
    row = OutboxRow(5, "t", "1", joined, False, joined=(4,))
    measured: list[Rendered] = []

    def fits(rendered: Rendered) -> bool:
        measured.append(rendered)
        return True

    assert renders.measured(texts, row, fits)
    assert renders.delivered(texts, row) is measured[0]  # the measured one, not a new one
    again = renders.delivered(texts, row)  # taken once: a retry renders afresh
    assert again is not measured[0]
    assert again.html == measured[0].html
    assert not renders.measured(texts, row, lambda rendered: False)
    assert renders.delivered(texts, row) is not measured[0]  # one that does not fit: not kept
    renders.measured(texts, row, fits)
    changed = OutboxRow(5, "t", "1", notice, False)
    assert renders.delivered(texts, changed).key == "consent.notice"
    assert renders.delivered(texts, changed).leads == ()  # a changed payload is rendered anew


async def test_text_rows_join_the_next_row_of_their_reply_only(
    tmp_path: Path, open_store: StoreOpener
) -> None:
    transport = JoiningTransport()
    first = [payload("thanks"), payload("menu")]
    second = [payload("note"), payload("card", edit_ref="7"), payload("after")]
    states = await deliver(tmp_path, [first, second], transport, open_store)
    assert transport.sent == [["thanks", "menu"], ["note"], ["card"], ["after"]]
    # Every row is marked sent; the joined ones with the one message's id.
    assert states == [("sent", "1"), ("sent", "1"), ("sent", "2"), ("sent", "3"), ("sent", "4")]


async def test_joining_stops_where_the_message_would_not_fit(
    tmp_path: Path, open_store: StoreOpener
) -> None:
    transport = JoiningTransport(limit=2)
    reply = [payload("a"), payload("b"), payload("c"), payload("d")]
    await deliver(tmp_path, [reply], transport, open_store)
    assert transport.sent == [["a", "b"], ["c", "d"]]


async def test_a_joined_message_refused_for_good_fails_every_row_in_it(
    tmp_path: Path, open_store: StoreOpener
) -> None:
    transport = JoiningTransport(fail=PermanentDelivery("blocked"))
    states = await deliver(tmp_path, [[payload("thanks"), payload("menu")]], transport, open_store)
    assert [state for state, _ref in states] == ["failed", "failed"]


async def test_telegram_sends_the_greeting_and_the_notice_as_one_message(
    api: FakeBotAPI, start_bot: Starter
) -> None:
    await start_bot()
    ana = api.user(5101, first_name="Ana")
    (notice,) = await ana.say("/start")
    await ana.settle()
    assert len(api.calls_to("sendMessage")) == 1
    greeting, question = notice.text.split("\n\n", 1)
    assert greeting.startswith("¡Hola! 👋 Soy el Asistente PTE")
    assert "Antes de empezar: tus datos personales" in question
    assert notice.button_labels == ["Acepto", "No acepto", "Aviso completo"]
    (menu,) = await ana.press("Acepto")
    await ana.settle()
    assert len(api.calls_to("sendMessage")) == 2
    assert menu.text.startswith("Gracias. Guardé tu aceptación")
    assert "Requisitos y pasos" in menu.button_labels


async def test_telegram_keeps_two_messages_when_one_would_be_over_the_limit(
    api: FakeBotAPI, settings: Settings
) -> None:
    app = await create_app(settings)
    channel = TelegramChannel(app)
    stop, ready = asyncio.Event(), asyncio.Event()
    polling = asyncio.create_task(run_polling(channel, stop, ready))
    try:
        await ready.wait()
        api.user(5102), api.user(5103)
        menu = encode(Outbound("common.error", {}, rows(Choice("x", "btn.menu"))), 1, None)
        # The acknowledgement alone fits a message either way; with the question after it,
        # the first pair fits and the second would not.
        fits = "x" * (MESSAGE_LIMIT - 300)
        over = "y" * (MESSAGE_LIMIT - 100)
        for chat, value in (("5102", fits), ("5103", over)):
            ack = encode(Outbound("consent.accepted", {}, current=value), 1, None)
            async with app.store.transaction(app.clock.now()) as tx:
                queued = await tx.enqueue("telegram", chat, [(ack, False), (menu, False)])
            channel.worker.submit(queued)
        await channel.worker.drain()
        sent = api.calls_to("sendMessage")
        assert all(call.ok for call in sent)  # nothing the real API would refuse
        to = [str(call.chat_id or call.params["chat_id"]) for call in sent]
        assert to.count("5102") == 1  # joined
        assert to.count("5103") == 2  # too long for one message: two, as before
    finally:
        stop.set()
        await polling
        await app.close()
