"""The WhatsApp channel driven as Meta drives it: signed webhooks to ``pte-bot serve``'s server,
replies through a strict fake Graph API on loopback, our app on a real SQLite file."""

from __future__ import annotations

import hashlib
import hmac
import json
from pathlib import Path

import aiohttp
import pytest

from bot.channels.server import Server
from bot.settings import Settings
from tests.bot.harness import broken
from tests.bot.telegram_harness import PDF, make_png
from tests.bot.whatsapp_harness import VERIFY_TOKEN, mailed_code, query, refused, whatsapp_settings
from tests.bot.whatsapp_harness import graph as graph  # a fixture
from tests.bot.whatsapp_harness import wa_server as wa_server  # a fixture
from tests.driver import MemoryMailer
from tests.fakes.graph_api import FakeGraphAPI, FakeWhatsAppUser

ANA = "51987654321"
MENU = [
    "Requisitos y pasos",
    "Solicitar accesos al PTE",
    "Actualizar perfiles",
    "Hacer una consulta",
    "Estado de mis trámites",
    "Ayuda",
]


@pytest.fixture
def settings(tmp_path: Path, graph: FakeGraphAPI) -> Settings:
    return whatsapp_settings(tmp_path, graph)


async def consent(user: FakeWhatsAppUser) -> None:
    await user.say("hola", n=2)  # the greeting and a notice too long to join it (1024)
    await user.tap("Acepto")  # the thanks and the menu: one message


async def test_the_handshake_echoes_the_challenge_only_for_the_verify_token(
    graph: FakeGraphAPI, wa_server: Server
) -> None:
    assert graph.webhook_url is not None
    params = {"hub.mode": "subscribe", "hub.challenge": "1158201444", "hub.verify_token": ""}
    async with aiohttp.ClientSession() as session:
        params["hub.verify_token"] = VERIFY_TOKEN
        async with session.get(graph.webhook_url, params=params) as response:
            assert (response.status, await response.text()) == (200, "1158201444")
        params["hub.verify_token"] = "guess"
        async with session.get(graph.webhook_url, params=params) as response:
            assert (response.status, await response.text()) == (403, "")


async def test_unsigned_or_tampered_deliveries_are_refused_and_answered_with_nothing(
    graph: FakeGraphAPI, settings: Settings, wa_server: Server
) -> None:
    ana = graph.user(ANA)
    stamp = str(int(graph.clock()))
    message = {"from": ANA, "id": "wamid.X1", "timestamp": stamp, "type": "text"}
    message["text"] = {"body": "hola"}  # type: ignore[assignment]
    payload = graph.envelope(messages=[message], user=ana)
    body = json.dumps(payload).encode()
    signed = "sha256=" + hmac.new(graph.app_secret.encode(), body, hashlib.sha256).hexdigest()

    assert await graph.deliver(payload, signature=None) == (401, "")
    assert await graph.deliver(payload, signature="sha256=" + "0" * 64) == (403, "")
    tampered = body.replace(b"hola", b"HOLA")
    assert await graph.deliver(payload, signature=signed, raw=tampered) == (403, "")
    wrong_key = hmac.new(b"another secret", body, hashlib.sha256).hexdigest()
    assert await graph.deliver(payload, signature=f"sha256={wrong_key}") == (403, "")

    assert await graph.deliver(payload, signature=signed, raw=body) == (200, "")
    greeting, _notice = await ana.expect(2)  # the genuine one is answered
    assert "Asistente PTE" in greeting.text
    assert query(settings, "SELECT event_id FROM processed_events") == [("wamid.X1",)]
    assert len(graph.sent) == 2


async def test_hola_is_answered_with_consent_then_the_six_entry_menu(
    graph: FakeGraphAPI, settings: Settings, wa_server: Server
) -> None:
    ana = graph.user(ANA, "Ana")
    greeting, notice = await ana.say("hola", n=2)
    assert greeting.type == "text"
    assert "*Asistente PTE*" in greeting.text  # Telegram's <b> as WhatsApp's bold
    assert "<b>" not in notice.text
    assert "Ley 29733" in notice.text
    assert notice.type == "button"
    assert notice.labels == ["Acepto", "No acepto", "Aviso completo"]

    [menu] = await ana.tap("Acepto")  # the thanks in front of the menu: one message
    assert menu.text.startswith("Gracias. Guardé tu aceptación")
    assert "\n\n¿Qué necesitas hacer?" in menu.text
    assert menu.type == "list"
    assert menu.labels == MENU
    assert menu.list_button == "Ver opciones"
    assert query(settings, "SELECT channel, accepted FROM consents") == [("whatsapp", 1)]
    assert refused(graph) == []


async def test_a_typed_label_works_like_a_tap(graph: FakeGraphAPI, wa_server: Server) -> None:
    ana = graph.user(ANA)
    await ana.say("hola", n=2)
    [menu] = await ana.say("acepto")
    assert menu.labels == MENU
    [card] = await ana.say("Requisitos y pasos")
    assert "Paso 1 de" in card.text
    assert refused(graph) == []


async def test_a_redelivered_message_is_answered_once(
    graph: FakeGraphAPI, settings: Settings, wa_server: Server
) -> None:
    ana = graph.user(ANA)
    await consent(ana)
    message = await ana.send("text", {"body": "requisitos"})
    await ana.expect(1)
    await ana.deliver(message)  # Meta did not get our 200 in time and sends it again
    await ana.deliver(message)
    assert await ana.settle() == []
    assert sum("Paso 1 de" in m.text for m in ana.outputs) == 1
    wamid = message["id"]
    sql = "SELECT count(*) FROM processed_events WHERE event_id = ?"
    assert query(settings, sql, (wamid,)) == [(1,)]


async def test_status_callbacks_are_recorded_and_a_failure_shows_on_the_outbox(
    graph: FakeGraphAPI, settings: Settings, wa_server: Server
) -> None:
    ana = graph.user(ANA)
    greeting, notice = await ana.say("hola", n=2)
    for status in ("sent", "delivered", "read", "read"):  # the last one is a redelivery
        assert await graph.status(greeting, status) == (200, "")
    failure = {"code": 131026, "title": "Message undeliverable"}
    assert await graph.status(notice, "failed", [failure]) == (200, "")
    await ana.settle()
    await wa_server.whatsapp.dispatcher.join()  # type: ignore[union-attr]

    rows = query(settings, "SELECT wamid, status, error_code FROM wa_statuses")
    assert sorted(rows) == sorted(
        [
            (greeting.wamid, "sent", None),
            (greeting.wamid, "delivered", None),
            (greeting.wamid, "read", None),
            (notice.wamid, "failed", 131026),
        ]
    )
    states = dict(query(settings, "SELECT external_ref, state FROM outbox"))
    assert states == {greeting.wamid: "sent", notice.wamid: "failed"}
    [(error,)] = query(settings, "SELECT last_error FROM outbox WHERE state = 'failed'")
    assert error == "whatsapp 131026: Message undeliverable"


async def test_a_long_list_is_paginated_and_every_page_fits(
    graph: FakeGraphAPI, wa_server: Server
) -> None:
    ana = graph.user(ANA)
    await consent(ana)
    await ana.tap("Hacer una consulta")
    await ana.say("20131312955")
    [sections] = await ana.say("Municipalidad de Prueba")
    assert sections.type == "list"
    assert len(sections.rows) == 10
    assert sections.labels[-1] == "Más opciones ▸"
    assert "Inversión e Infobras" in sections.labels  # the section's short form
    row = next(r for r in sections.rows if r[1] == "Inversión e Infobras")
    assert row[2] == "Proyectos de inversión e Infobras"  # the whole label, in the description
    [second] = await ana.tap("Más opciones ▸")
    assert "¿Qué sección del portal está afectada?" in second.text  # the question again
    assert "Más opciones (2 de 2)" in second.text
    assert second.labels == [
        "Registro de visitas",
        "Información focalizada",
        "Acceso o contraseña",
        "Otro",
    ]
    [description] = await ana.tap("Otro")
    assert "Paso 3 de 11" in description.text
    assert refused(graph) == []


async def test_a_consulta_with_an_image_goes_through_the_media_download_flow(
    graph: FakeGraphAPI, settings: Settings, wa_server: Server, mailer: MemoryMailer
) -> None:
    ana = graph.user(ANA)
    await consent(ana)
    await ana.tap("Hacer una consulta")
    await ana.say("20131312955")
    await ana.say("Municipalidad de Prueba")
    await ana.tap("Más opciones ▸")
    await ana.tap("Otro")
    [attach] = await ana.say("No puedo entrar a la sección de presupuesto desde ayer.")
    assert attach.labels == ["✅ Listo"]

    png = make_png()
    media_id = await ana.send_image(png)
    [received] = await ana.expect(1)
    assert "Recibido (1 de 10)" in received.text
    assert media_id in graph.downloads
    [(sha256,)] = query(settings, "SELECT sha256 FROM files")
    assert sha256 == hashlib.sha256(png).hexdigest()

    big = await ana.send_document(PDF, "informe.pdf", size=30 * 1024 * 1024)
    [refusal] = await ana.expect(1)
    assert big not in graph.downloads  # refused from the metadata, never fetched
    assert "MB" in refusal.text or "grande" in refusal.text

    [names] = await ana.tap("✅ Listo")
    assert "¿Cuáles son tus *nombres*?" in names.text
    for answer in ("Ana", "Pérez Ruiz", "Especialista", "ana.perez@munisjl.gob.pe"):
        await ana.say(answer)
    await ana.say(await mailed_code(mailer))
    [summary] = await ana.say("987654321")
    assert "Revisa tu consulta" in summary.text
    assert "*Consulta de:* Ana Pérez Ruiz, Especialista" in summary.text
    registered, *_ = await ana.tap("✅ Confirmar y enviar", n=2)
    assert "PTE-" in registered.text
    [(kind, files)] = query(
        settings,
        "SELECT t.type, (SELECT count(*) FROM ticket_files f WHERE f.ticket_id = t.id)"
        " FROM tickets t",
    )
    assert (kind, files) == ("consulta", 1)
    assert refused(graph) == []


async def test_a_reply_that_cannot_render_is_replaced_by_an_apology_with_the_menu(
    graph: FakeGraphAPI, wa_server: Server
) -> None:
    ana = graph.user(ANA)
    await consent(ana)
    assert wa_server.whatsapp is not None
    wa_server.whatsapp.worker.max_errors = 1  # given up at once: no backoff to wait out
    wa_server.app.texts = broken("common.welcome_back")  # what the channel renders with
    menu, apology = await ana.say("/start", n=2)
    assert menu.labels == MENU
    assert apology.text.startswith("Lo siento, no pude mostrarte")
    assert apology.labels == ["Menú"]
    [again] = await ana.tap("Menú")
    assert again.labels == MENU
    assert refused(graph) == []
