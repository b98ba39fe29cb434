"""Issue 14, point 4: a WhatsApp file that cannot be fetched from Meta is not met with
silence: after the retries the officer is asked to send it again, and can."""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.channels import whatsapp
from bot.channels.server import Server
from bot.settings import Settings
from tests.bot.telegram_harness import make_png
from tests.bot.whatsapp_harness import graph as graph  # a fixture
from tests.bot.whatsapp_harness import query, whatsapp_settings
from tests.bot.whatsapp_harness import wa_server as wa_server  # a fixture
from tests.fakes.graph_api import FakeGraphAPI

ANA = "51987654321"


@pytest.fixture
def settings(tmp_path: Path, graph: FakeGraphAPI) -> Settings:
    return whatsapp_settings(tmp_path, graph)


async def test_a_file_that_cannot_be_fetched_is_asked_again(
    graph: FakeGraphAPI, settings: Settings, wa_server: Server, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(whatsapp, "FILE_RETRY_WAIT", 0.01)
    ana = graph.user(ANA)
    await ana.say("hola", n=2)
    await ana.tap("Acepto")
    await ana.tap("💬 Hacer una consulta")
    await ana.say("20131312955")
    await ana.say("Municipalidad de Prueba")
    await ana.tap("Más opciones ▸")
    await ana.tap("Otro")
    await ana.say("No puedo entrar a la sección de presupuesto desde ayer.")

    # Meta no longer has the media (its URL expired, or the id is unknown): 3 tries fail.
    await ana.send("image", {"id": "404404", "mime_type": "image/jpeg", "sha256": "x"})
    [notice] = await ana.expect(1)
    assert notice.text == (
        "No pude descargar el archivo que me enviaste. Por favor, envíalo de nuevo."
    )
    assert [c.path for c in graph.calls if c.status != 200] == ["/v21.0/404404"] * 3
    assert query(settings, "SELECT count(*) FROM files") == [(0,)]

    await ana.send_image(make_png())  # sent again: received
    [received] = await ana.expect(1)
    assert "Recibido (1 de 10)" in received.text
