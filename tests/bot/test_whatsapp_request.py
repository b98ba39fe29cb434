"""Solicitar accesos al PTE on WhatsApp, end to end: signed webhooks to ``pte-bot serve``'s
server, every reply through the strict fake Graph API (so every interactive message fits
WhatsApp's limits), the resolution received through the media download flow and the Formato
sent through a media upload."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from bot.channels.server import Server
from bot.channels.whatsapp_sent import UploadedMedia
from bot.settings import Settings
from tests.bot.telegram_harness import (
    ENTITY,
    OFFICER_EMAIL,
    RUC,
    sheet_cells,
)
from tests.bot.whatsapp_harness import (
    ANA,
    HELP_DESK,
    STEPS,
    query,
    refused,
    whatsapp_settings,
)
from tests.bot.whatsapp_harness import graph as graph  # a fixture
from tests.bot.whatsapp_harness import wa_server as wa_server  # a fixture
from tests.driver import FakeClock, MemoryMailer
from tests.fakes.graph_api import FakeGraphAPI


@pytest.fixture
def settings(tmp_path: Path, graph: FakeGraphAPI) -> Settings:
    return whatsapp_settings(tmp_path, graph)


async def test_the_whole_access_request_on_whatsapp(
    graph: FakeGraphAPI, settings: Settings, mailer: MemoryMailer, wa_server: Server
) -> None:
    ana = graph.user(ANA, "Ana")
    for name, action, follows in STEPS:
        replies = await action(ana, mailer)
        assert any(follows in m.text for m in replies), f"after {name}: {list(map(str, replies))}"
        if name == "codigo":
            assert replies[-1].labels == ["Compartir mi número"]  # WhatsApp's own button

    summary = ana.last
    assert summary.type == "button"
    assert len(summary.text) <= 1024
    assert ENTITY in summary.text  # shown literally, no HTML escapes on WhatsApp
    assert "+51987654321" in summary.text  # the number WhatsApp told us
    assert summary.labels == ["✅ Confirmar y enviar", "✏️ Corregir"]

    registered, formato, menu = await ana.tap("✅ Confirmar y enviar", n=3)
    [(number, phone)] = query(
        settings,
        "SELECT t.number, json_extract(t.data, '$.resp.phone') FROM tickets t",
    )
    assert f"Solicitud registrada: {number}" in registered.text
    assert phone == "+51987654321"
    assert formato.type == "document"
    assert formato.filename == f"Formato_Perfiles_{number}.xlsx"
    assert formato.document is not None
    assert formato.document.startswith(b"PK\x03\x04")
    assert RUC in sheet_cells(formato.document)
    assert any(c.path.endswith("/media") and c.status == 200 for c in graph.calls)
    assert menu.type == "list"

    # The resolution went through GET /{media-id} and the download URL, once.
    assert len(graph.downloads) == 1
    assert await mailer.wait_for(lambda: any(m["To"] == HELP_DESK for m in mailer.sent))
    to_desk = [m for m in mailer.sent if m["To"] == HELP_DESK]
    [request] = to_desk
    assert request["Cc"] == OFFICER_EMAIL
    assert {p.get_filename() for p in request.iter_attachments()} == {
        f"Resolucion_{number}.pdf",
        f"Formato_Perfiles_{number}.xlsx",
    }
    assert refused(graph) == []


def uploads(graph: FakeGraphAPI) -> int:
    return sum(c.method == "POST" and c.path.endswith("/media") for c in graph.calls)


async def test_the_formato_is_uploaded_again_once_meta_has_dropped_the_first_upload(
    graph: FakeGraphAPI,
    settings: Settings,
    mailer: MemoryMailer,
    wa_server: Server,
    clock: FakeClock,
) -> None:
    """Meta keeps an uploaded file 30 days: the Formato asked for again the next day reuses
    the upload, a month later it is uploaded again instead of naming a file Meta dropped."""
    ana = graph.user(ANA, "Ana")
    for _name, action, _follows in STEPS:
        await action(ana, mailer)
    _registered, formato, _menu = await ana.tap("✅ Confirmar y enviar", n=3)
    [(number,)] = query(settings, "SELECT number FROM tickets")
    assert uploads(graph) == 1

    for later, uploaded in [(timedelta(days=1), 1), (timedelta(days=30), 2)]:
        clock.advance(seconds=later.total_seconds())
        await ana.say(number)  # its detail
        again, _detail = await ana.tap("📄 Descargar Formato", n=2)
        assert again.type == "document", [str(m) for m in (again, _detail)]
        assert again.document == formato.document
        assert uploads(graph) == uploaded
    assert refused(graph) == []


def test_only_the_most_recently_used_upload_ids_are_kept() -> None:
    """However many files a long-running process sends, it remembers ``kept`` ids."""
    now = datetime(2026, 12, 2, 15, 0, tzinfo=UTC)
    media = UploadedMedia(kept=2)
    media.add("formato-a", "901", now)
    media.add("formato-b", "902", now)
    assert media.get("formato-a", now) == "901"  # used: now the most recent
    media.add("formato-c", "903", now)
    assert len(media) == 2
    assert media.get("formato-b", now) is None  # the least recently used went
    assert [media.get(f"formato-{k}", now) for k in "ac"] == ["901", "903"]
