"""The fake Graph API refuses what WhatsApp refuses (so a test passing through it means the
bot's messages fit), and the channel's client reads its errors."""

from __future__ import annotations

from typing import Any

import pytest

from bot.channels.whatsapp_graph import GraphClient, GraphError
from tests.fakes.graph_api import FakeGraphAPI

TO = "51987654321"


def buttons(*titles: str) -> dict[str, Any]:
    action = {"buttons": [{"type": "reply", "reply": {"id": t, "title": t}} for t in titles]}
    return {
        "type": "interactive",
        "interactive": {"type": "button", "body": {"text": "¿?"}, "action": action},
    }


def listed(rows: list[str], body: str = "¿?", button: str = "Ver opciones") -> dict[str, Any]:
    section = {"rows": [{"id": f"r{i}", "title": t} for i, t in enumerate(rows)]}
    action = {"button": button, "sections": [section]}
    return {
        "type": "interactive",
        "interactive": {"type": "list", "body": {"text": body}, "action": action},
    }


@pytest.mark.parametrize(
    "message",
    [
        buttons("a", "b", "c", "d"),  # 4 buttons
        buttons("x" * 21),  # a title over 20
        buttons("a", "a"),  # the same title twice
        listed([f"fila {i}" for i in range(11)]),  # 11 rows
        listed(["y" * 25]),  # a row title over 24
        listed(["a"], body="z" * 1025),  # an interactive body over 1024
        listed(["a"], button="Ver todas las opciones"),  # a list button over 20
        {"type": "text", "text": {"body": "t" * 4097}},  # a text over 4096
        {"type": "document", "document": {"id": "404", "filename": "x.pdf"}},  # unknown media
        {"type": "template", "template": {"name": "nope", "language": {"code": "es"}}},
    ],
)
async def test_the_fake_refuses_what_whatsapp_refuses(message: dict[str, Any]) -> None:
    async with FakeGraphAPI() as api:
        client = GraphClient(api.base_url, api.token, api.phone_number_id)
        try:
            with pytest.raises(GraphError) as refused:
                await client.send(TO, message)
        finally:
            await client.close()
    assert refused.value.status in (400, 404)
    assert api.sent == []


async def test_a_wrong_token_is_refused_and_a_fitting_message_is_sent() -> None:
    async with FakeGraphAPI() as api:
        wrong = GraphClient(api.base_url, "not-the-token", api.phone_number_id)
        right = GraphClient(api.base_url, api.token, api.phone_number_id)
        try:
            with pytest.raises(GraphError) as refused:
                await wrong.send(TO, buttons("Sí", "No"))
            wamid = await right.send(TO, buttons("Sí", "No", "Tal vez"))
            media = await right.upload(b"PK\x03\x04", "Formato.xlsx", "application/x")
            info = await right.media_info(media)
            assert await right.download(info["url"], 100) == b"PK\x03\x04"
        finally:
            await wrong.close()
            await right.close()
    assert (refused.value.status, refused.value.code) == (401, 190)
    assert [m.wamid for m in api.sent] == [wamid]
    assert api.sent[0].labels == ["Sí", "No", "Tal vez"]
