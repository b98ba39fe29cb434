"""A burst of officers under Telegram's flood limit, end to end; polled updates per chat in
order; and ``bench --burst`` on a handful of officers. Nothing here asserts a time."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import pytest
from telegram import Update

from bot.bench import burst
from bot.channels.telegram_updates import ChatUpdateProcessor
from bot.settings import Settings
from tests.bot.conftest import Starter
from tests.fakes.telegram_api import FakeBotAPI, FakeUser

OFFICERS = 6


@pytest.fixture
def settings(tmp_path: Path, api: FakeBotAPI) -> Settings:
    return Settings(  # type: ignore[call-arg]
        data_dir=tmp_path / "data",
        telegram_bot_token=api.token,
        telegram_base_url=api.base_url,
        telegram_base_file_url=api.base_file_url,
        # Faster than the fake allows, so that Telegram's 429s really happen.
        telegram_flood_limit=20,
        _env_file=None,
    )


async def officer(user: FakeUser) -> list[str]:
    texts = [m.text for m in await user.say("/start", timeout=60)]
    texts += [m.text for m in await user.press("Acepto", timeout=60)]
    texts += [m.text for m in await user.press("Requisitos y pasos", timeout=60)]
    texts += [m.text for m in await user.press("Siguiente ▶", timeout=60)]
    return texts


async def test_officers_at_once_under_the_flood_limit_get_every_reply_in_order(
    api: FakeBotAPI, start_bot: Starter, settings: Settings
) -> None:
    api.flood_limit(8)
    await start_bot()
    users = [api.user(9000 + n, first_name=f"Oficial {n}") for n in range(OFFICERS)]
    transcripts = await asyncio.gather(*(officer(user) for user in users))
    for texts in transcripts:
        assert "Asistente PTE" in texts[0]  # with the notice: one message
        assert "Guardé tu aceptación" in texts[1]  # with the menu: one message
        assert "Paso 1 de 7" in texts[2]
        assert "Paso 2 de 7" in texts[3]
    refused = [c for c in api.calls if c.status == 429]
    assert refused  # the fake did refuse: the replies above came through retries
    for user in users:
        await user.settle()
        assert len([m for m in user.messages if not m.deleted]) == 3  # no duplicates
    database = sqlite_rows(settings, "SELECT state, count(*) FROM outbox GROUP BY state")
    assert database == [("sent", OFFICERS * 6)]


def sqlite_rows(settings: Settings, sql: str) -> list[Any]:
    import sqlite3

    with sqlite3.connect(settings.database_path) as conn:
        return list(conn.execute(sql))


def update(update_id: int, chat_id: int) -> Update:
    body = {
        "update_id": update_id,
        "message": {
            "message_id": update_id,
            "date": 0,
            "chat": {"id": chat_id, "type": "private"},
            "text": f"u{update_id}",
        },
    }
    return Update.de_json(body, None)


async def test_polled_updates_run_per_chat_in_order_other_chats_concurrently() -> None:
    """As PTB's polling loop drives it: one task per update, started in update_id order (as
    Telegram hands back the unconfirmed updates after a restart)."""
    processor = ChatUpdateProcessor()
    gate = asyncio.Event()
    ran: list[tuple[int, int]] = []

    async def handle(u: Update, wait: bool) -> None:
        if wait:
            await gate.wait()
        await asyncio.sleep(0)
        assert u.effective_chat is not None
        ran.append((u.effective_chat.id, u.update_id))

    updates = [update(1, 10), update(2, 10), update(3, 20), update(4, 10), update(5, 20)]
    tasks = [
        asyncio.create_task(processor.process_update(u, handle(u, wait=u.update_id == 1)))
        for u in updates
    ]
    await asyncio.gather(*tasks[2:3], *tasks[4:5])
    assert ran == [(20, 3), (20, 5)]  # chat 20 went on while chat 10 waited
    gate.set()
    await asyncio.gather(*tasks)
    assert [u for chat, u in ran if chat == 10] == [1, 2, 4]
    await processor.shutdown()


def test_bench_burst_runs_on_a_few_officers(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    settings = Settings(data_dir=tmp_path / "data", _env_file=None)  # type: ignore[call-arg]
    from argparse import Namespace

    out = tmp_path / "burst.json"
    args = Namespace(burst=3, flood_limit=30.0, skip_peer=False, out=str(out))
    assert burst.main(settings, args) == 0
    result = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert result["bot_messages"] == 24  # 8 per officer: one per update
    for name in ("product", "peer"):
        assert result[name]["lost_replies"] == 0
        assert result[name]["officers_done"] == 3
        assert result[name]["messages_sent"] == 24
        assert result[name]["bot_messages_per_update"] == 1.0
        assert {"completion_s", "p50_ms", "p99_ms", "429s"} <= set(result[name])
    assert result["floor_s"] == 0.8
    assert json.loads(out.read_text(encoding="utf-8")) == result
    assert not settings.data_dir.exists()  # a temporary database, never the user's
