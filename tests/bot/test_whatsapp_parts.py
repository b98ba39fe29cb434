"""A row that goes as several WhatsApp messages (a text over 4096 characters, a long text
before a document) and fails part-way: trying it again does not repeat what went out, and
what the channel keeps to know that goes with the row. Meta may also accept every part and
report some failed later (131047, in a status callback): the row is held and, released,
goes again from the first failed part on. A row given up part-way (refused,
out of attempts, poison) or left when the channel stops leaves nothing behind, so a later
row that SQLite gives the same id (an erased chat's rows are deleted) is sent whole.

At the adapter: the server as ``pte-bot serve`` runs it, the fake Graph API refusing the
sends the test asks it to.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from bot.channels.server import Server
from bot.channels.whatsapp import WhatsAppChannel
from bot.channels.whatsapp_render import TEXT_LIMIT
from bot.channels.whatsapp_sent import SentParts
from bot.delivery.payload import encode
from bot.settings import Settings
from bot.store.database import OutboxRow
from conversations.events import Document, Outbound
from tests.bot.whatsapp_harness import graph as graph  # a fixture
from tests.bot.whatsapp_harness import query, refused, serving, whatsapp_settings
from tests.bot.whatsapp_harness import wa_server as wa_server  # a fixture
from tests.conftest import AppFactory
from tests.driver import FakeClock
from tests.fakes.graph_api import FakeGraphAPI, FakeWhatsAppUser

ANA = "51987654321"
BETO = "51955555555"
PARAGRAPH = "Revisamos tu solicitud y te contamos lo que encontramos en el sistema. " * 6
LONG = "\n\n".join(f"{n}. {PARAGRAPH}" for n in range(1, 15))  # two texts on WhatsApp
LONGER = "\n\n".join(f"{n}. {PARAGRAPH}" for n in range(1, 22))  # three texts
MISSING_PDF = Document("0" * 64, "formato.pdf", "application/pdf")  # not in the file store
UNAVAILABLE = (503, 2, "Service temporarily unavailable")
CLOSED_LATER = (200, 131047, "Re-engagement message")  # accepted, then a failed status


@pytest.fixture
def settings(tmp_path: Path, graph: FakeGraphAPI) -> Settings:
    return whatsapp_settings(tmp_path, graph)


def desk_message(text: str, document: Document | None = None) -> Outbound:
    """The desk's message to the officer (``aviso.mensaje``), as the specialist wrote it."""
    data = {"number": "PTE-2026-000001", "message": text}
    return Outbound("aviso.mensaje", data, document=document)


async def notify(server: Server, wa_id: str, message: Outbound) -> OutboxRow:
    """One row for ``wa_id``, committed, then delivered."""
    app, channel = server.app, whatsapp(server)
    async with app.store.transaction(app.clock.now()) as tx:
        [added] = await tx.enqueue("whatsapp", wa_id, [(encode(message, 0, None), False)])
    channel.submit([added])
    return added


def whatsapp(server: Server) -> WhatsAppChannel:
    assert server.whatsapp is not None
    return server.whatsapp


async def consented(graph: FakeGraphAPI, wa_id: str) -> FakeWhatsAppUser:
    person = graph.user(wa_id)
    await person.say("hola", n=2)
    await person.tap("Acepto")
    return person


def state_of(settings: Settings, row: OutboxRow) -> str:
    [(state,)] = query(settings, "SELECT state FROM outbox WHERE id = ?", (row.id,))
    return str(state)


@pytest.mark.parametrize("failure", ["refused", "out of attempts", "poison"])
async def test_a_row_given_up_part_way_leaves_nothing_to_skip_the_next_row_with_its_id(
    graph: FakeGraphAPI, settings: Settings, wa_server: Server, failure: str
) -> None:
    channel = whatsapp(wa_server)
    channel.worker.max_backoff = 0.0  # retries at once: nothing here waits for a backoff
    ana = await consented(graph, ANA)
    await consented(graph, BETO)  # the rows just before Ana's notice are Beto's

    if failure == "refused":  # the second text refused for good
        graph.failures = [None, (400, 131026, "(#131026) Message undeliverable")]
        notice = await notify(wa_server, ANA, desk_message(LONG))
    elif failure == "out of attempts":  # the second text fails until the worker gives up
        channel.worker.max_attempts = 2
        graph.failures = [None, UNAVAILABLE, UNAVAILABLE]
        notice = await notify(wa_server, ANA, desk_message(LONG))
    else:  # the text goes, its document cannot be read: the row is given up as poison
        notice = await notify(wa_server, ANA, desk_message(LONG[:2000], MISSING_PDF))
    first, *apology = await ana.expect(2 if failure == "poison" else 1)
    await channel.worker.drain()
    assert PARAGRAPH[:40] in first.text
    assert state_of(settings, notice) == "failed"
    assert len(channel.transport.parts) == 0  # given up: what went out of it is forgotten
    if failure == "poison":
        assert [m.labels for m in apology] == [["Menú"]]  # the apology, with the menu

    # Erasing deletes Ana's rows: her next row takes the failed notice's id again.
    [(before,)] = query(settings, "SELECT max(id) FROM outbox WHERE chat_id != ?", (ANA,))
    assert before == notice.id - 1
    [ask] = await ana.say("/borrar_mis_datos")
    assert ask.labels[0] == "Sí, borrar mis datos"
    [done] = await ana.tap("Sí, borrar mis datos")  # sent, not skipped as "already sent"
    assert "borré tus datos" in done.text
    assert len(channel.transport.parts) == 0


async def test_a_retry_resumes_after_the_part_that_went_out(
    graph: FakeGraphAPI, settings: Settings, wa_server: Server
) -> None:
    channel = whatsapp(wa_server)
    channel.worker.max_backoff = 0.0
    ana = await consented(graph, ANA)
    graph.failures = [None, UNAVAILABLE, UNAVAILABLE]
    notice = await notify(wa_server, ANA, desk_message(LONG))
    first, second = await ana.expect(2)
    await channel.worker.drain()
    assert len(refused(graph)) == 2
    assert max(len(first.text), len(second.text)) <= TEXT_LIMIT
    assert "14. " not in first.text
    assert "14. " in second.text  # the second part, once
    assert state_of(settings, notice) == "sent"
    assert len(channel.transport.parts) == 0


async def test_a_row_held_part_way_sends_only_the_rest_when_the_officer_writes(
    graph: FakeGraphAPI, settings: Settings, wa_server: Server
) -> None:
    channel = whatsapp(wa_server)
    ana = await consented(graph, ANA)
    # Meta closed the window between the two texts: the second is refused with 131047.
    graph.failures = [None, (400, 131047, "(#131047) Re-engagement message")]
    notice = await notify(wa_server, ANA, desk_message(LONG))
    first, template = await ana.expect(2)
    assert template.type == "template"
    assert query(settings, "SELECT outbox_id FROM wa_held") == [(notice.id,)]
    assert len(channel.transport.parts) == 1  # kept for the release

    await ana.send("text", {"body": "hola"})
    second, *_reply = await ana.expect(2)
    assert "14. " not in first.text
    assert "14. " in second.text  # the rest, not the first part again
    await ana.settle()
    assert [m.text for m in ana.outputs].count(first.text) == 1
    assert len(channel.transport.parts) == 0


@pytest.mark.parametrize(
    ("text", "failures", "delivered"),
    [
        (LONG, [None, CLOSED_LATER], 1),  # the last of two
        (LONGER, [None, CLOSED_LATER, CLOSED_LATER], 1),  # the last two of three
        (LONG, [CLOSED_LATER, CLOSED_LATER], 0),  # every part: the row goes whole
    ],
    ids=["last-of-two", "last-two-of-three", "all"],
)
async def test_parts_failed_by_a_status_callback_go_again_from_the_first_failed_one_on(
    graph: FakeGraphAPI,
    settings: Settings,
    wa_server: Server,
    text: str,
    failures: list[tuple[int, int, str] | None],
    delivered: int,
) -> None:
    """Meta accepted every part, then reported some failed with 131047 (the window closed
    meanwhile): the row is held, and when the officer writes the parts they already have
    do not go again."""
    channel = whatsapp(wa_server)
    ana = await consented(graph, ANA)
    before = len(ana.outputs)
    graph.failures = failures
    notice = await notify(wa_server, ANA, desk_message(text))
    *_delivered, template = await ana.expect(delivered + 1)
    assert template.type == "template"
    await ana.settle()
    assert query(settings, "SELECT outbox_id FROM wa_held") == [(notice.id,)]

    await ana.send("text", {"body": "hola"})
    await ana.settle()
    parts = [m.text for m in ana.outputs[before:] if PARAGRAPH[:40] in m.text]
    numbers = [int(n) for n in re.findall(r"(\d+)\. Revisamos", "".join(parts))]
    assert numbers == list(range(1, text.count(PARAGRAPH) + 1))  # each paragraph once
    assert state_of(settings, notice) == "sent"
    assert len(channel.transport.parts) == 0


async def test_a_stopped_channel_keeps_nothing_and_sends_the_row_whole_after_a_restart(
    graph: FakeGraphAPI, settings: Settings, clock: FakeClock, make_app: AppFactory
) -> None:
    async with serving(make_app, graph, clock) as server:
        ana = await consented(graph, ANA)
        channel = whatsapp(server)
        graph.failures = [None, *[UNAVAILABLE] * 50]  # the second text waits to be retried
        notice = await notify(server, ANA, desk_message(LONG))
        [first] = await ana.expect(1)
        assert await graph.wait_for(lambda: len(refused(graph)) >= 1, timeout=10)
        assert len(channel.transport.parts) == 1
    assert len(channel.transport.parts) == 0  # nothing kept once the channel stopped
    assert state_of(settings, notice) == "pending"
    graph.failures = []

    async with serving(make_app, graph, clock):
        again, second = await ana.expect(2)  # as after a crash: at least once, whole
        assert again.text == first.text
        assert "14. " in second.text
        await ana.settle()
        assert state_of(settings, notice) == "sent"


def test_what_is_kept_names_the_rows_messages_and_is_bounded() -> None:
    parts = SentParts(kept=2)
    one, two = (
        [{"type": "text", "text": {"body": "uno"}}],
        [{"type": "text", "text": {"body": "dos"}}],
    )
    parts.advance(7, ANA, [*one, *two], 1)
    assert parts.sent(7, ANA, [*one, *two]) == 1  # the same row tried again: resumes after "uno"
    assert parts.sent(7, ANA, [*two, *one]) == 0  # another row given id 7: sent whole
    assert len(parts) == 0  # and the stale entry is gone
    parts.advance(7, ANA, [*one, *two], 1)
    assert parts.sent(7, BETO, [*one, *two]) == 0  # same words, other chat
    parts.advance(7, ANA, [*one, *two], 1)
    assert parts.sent(7, ANA, [*one, *two]) == 1
    for row_id in (1, 2, 3):
        parts.advance(row_id, ANA, [*one, *two], 1)
    assert len(parts) == 2
    assert parts.sent(1, ANA, [*one, *two]) == 0  # the oldest was dropped: sent whole if ever
    assert parts.sent(3, ANA, [*one, *two]) == 1


def test_any_parts_status_names_its_row_which_resumes_at_the_first_failed_part() -> None:
    parts = SentParts()
    texts = [{"type": "text", "text": {"body": word}} for word in ("uno", "dos", "tres")]
    for index, wamid in enumerate(["w.1", "w.2", "w.3"]):
        parts.went((6, 7), ANA, texts, index, wamid)  # row 7, with row 6 joined in front
    parts.forget(7)  # sent to the end: nothing to resume
    assert parts.sent(7, ANA, texts) == 0
    assert parts.rows_of("w.2") == (6, 7)
    parts.failed("w.3")
    parts.failed("w.2")  # reported after a later part: the first failed one still counts
    assert parts.sent(7, ANA, texts) == 1  # released: "dos" and "tres" go again
    assert parts.sent(7, ANA, texts) == 1  # and again if that attempt is retried
    parts.went((6, 7), ANA, texts, 1, "w.4")
    assert parts.rows_of("w.2") is None  # "dos" sent again: the old send names nothing
    assert parts.rows_of("w.4") == (6, 7)
    parts.failed("w.1")
    assert parts.sent(7, ANA, texts[::-1]) == 0  # another row given id 7: sent whole
    assert parts.rows_of("w.1") is None
    parts.went((8,), ANA, texts[:1], 0, "w.5")
    assert parts.rows_of("w.5") is None  # one message: the outbox's external_ref names it
