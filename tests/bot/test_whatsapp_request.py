"""Solicitar accesos al PTE on WhatsApp, end to end: signed webhooks to ``pte-bot serve``'s
server, every reply through the strict fake Graph API (so every interactive message fits
WhatsApp's limits), the resolution received through the media download flow and the Formato
sent through a media upload."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

import pytest

from bot.channels.server import Server
from bot.settings import Settings
from tests.bot.test_telegram_request import (
    ENTITY,
    OFFICER_EMAIL,
    PDF,
    RESOLUTION,
    RESOLUTION_DATE,
    RUC,
    sheet_cells,
)
from tests.bot.whatsapp_harness import HELP_DESK, query, refused, whatsapp_settings
from tests.bot.whatsapp_harness import graph as graph  # a fixture
from tests.bot.whatsapp_harness import wa_server as wa_server  # a fixture
from tests.driver import MemoryMailer
from tests.fakes.graph_api import FakeGraphAPI, FakeWhatsAppUser, Sent

ANA = "51987654321"


@pytest.fixture
def settings(tmp_path: Path, graph: FakeGraphAPI) -> Settings:
    return whatsapp_settings(tmp_path, graph)


async def mailed_code(mailer: MemoryMailer, timeout: float = 10.0) -> str:  # noqa: ASYNC109
    """The code in the verification mail, once the mail outbox has sent it."""
    deadline = time.monotonic() + timeout
    while not mailer.sent:
        assert time.monotonic() < deadline, "no verification mail was sent"
        await asyncio.sleep(0.02)
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
    deadline = time.monotonic() + 10
    while not (to_desk := [m for m in mailer.sent if m["To"] == HELP_DESK]):
        assert time.monotonic() < deadline, "no mail to the help desk"
        await asyncio.sleep(0.02)
    [request] = to_desk
    assert request["Cc"] == OFFICER_EMAIL
    assert {p.get_filename() for p in request.iter_attachments()} == {
        f"Resolucion_{number}.pdf",
        f"Formato_Perfiles_{number}.xlsx",
    }
    assert refused(graph) == []
