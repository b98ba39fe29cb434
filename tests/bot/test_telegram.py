"""The Telegram channel end to end: the real python-telegram-bot Application, long polling
against the fake Bot API on loopback, our app on a real SQLite file."""

from __future__ import annotations

import asyncio
import json
import os
import sys
from pathlib import Path
from typing import Any

import httpx
import pytest

from bot.app import create_app
from bot.channels.telegram import TelegramChannel, run_polling
from bot.channels.telegram_transport import _markup_json
from bot.settings import Settings
from tests.bot.conftest import Starter
from tests.bot.harness import broken
from tests.fakes.telegram_api import FakeBotAPI, FakeUser


@pytest.fixture
def settings(tmp_path: Path, api: FakeBotAPI) -> Settings:
    return Settings(  # type: ignore[call-arg]
        data_dir=tmp_path / "data",
        telegram_bot_token=api.token,
        telegram_base_url=api.base_url,
        telegram_base_file_url=api.base_file_url,
        _env_file=None,
    )


def rejected(api: FakeBotAPI) -> list[str]:
    """Calls the Bot API refused. Not counted: an in-flight long poll, and "message is not
    modified", which the channel treats as delivered (it comes from re-sending a card edit
    after a crash, or from tapping the same button twice)."""
    return [
        str(c)
        for c in api.calls
        if c.status not in (0, 200)
        and c.method != "getUpdates"
        and "not modified" not in (c.description or "")
    ]


async def consent(user: FakeUser) -> None:
    await user.say("/start")
    await user.press("Acepto")


async def test_new_user_consents_and_walks_through_the_requirements(
    api: FakeBotAPI, start_bot: Starter
) -> None:
    await start_bot()
    ana = api.user(5001, first_name="Ana")
    # The greeting and the notice are ONE message: one message per step under the flood limit.
    (notice,) = await ana.say("/start")
    assert notice.text.startswith("¡Hola! 👋 Soy el Asistente PTE")
    assert "Antes de empezar: tus datos personales" in notice.text
    assert notice.button_labels == ["Acepto", "No acepto", "Aviso completo"]
    (menu,) = await ana.press("Acepto")
    assert menu.text.startswith("Gracias. Guardé tu aceptación")
    assert "\n\n¿Qué necesitas hacer?" in menu.text
    assert "Requisitos y pasos" in menu.button_labels
    (card,) = await ana.press("Requisitos y pasos")
    assert "Paso 1 de 7" in card.text
    (edited,) = await ana.press("Siguiente ▶")
    assert edited.edited
    assert edited.message_id == card.message_id
    assert "Paso 2 de 7" in edited.text
    assert rejected(api) == []
    answered = api.calls_to("answerCallbackQuery")
    assert len(answered) == 3  # every tap is answered


async def test_a_tap_is_answered_after_its_turn_and_also_when_the_turn_fails(
    api: FakeBotAPI, settings: Settings
) -> None:
    app = await create_app(settings)
    channel = TelegramChannel(app)
    process = app.process
    answers_when_committed: list[int] = []  # answers the fake had when each turn returned
    failing = False

    async def processing(event: Any, fetch: Any = None) -> Any:
        if failing:
            raise RuntimeError("the store is gone")
        rows = await process(event, fetch)
        answers_when_committed.append(len(api.calls_to("answerCallbackQuery")))
        return rows

    app.process = processing  # type: ignore[method-assign]
    stop, ready = asyncio.Event(), asyncio.Event()
    polling = asyncio.create_task(run_polling(channel, stop, ready))
    try:
        await ready.wait()
        ana = api.user(5012)
        await ana.say("/start")
        await ana.press("Acepto")
        await ana.settle()
        assert answers_when_committed == [0, 0]  # the tap was answered after its turn
        assert len(api.calls_to("answerCallbackQuery")) == 1
        failing = True
        await ana.tap("Requisitos y pasos")  # its turn fails: no reply, the tap answered
        assert await ana.settle() == []
        assert len(api.calls_to("answerCallbackQuery")) == 2
        assert rejected(api) == []
    finally:
        stop.set()
        await polling
        await app.close()


async def test_command_menu_is_registered_in_spanish(api: FakeBotAPI, start_bot: Starter) -> None:
    await start_bot()
    commands = {c["command"]: c["description"] for c in api.commands()}
    assert commands["requisitos"] == "Requisitos y pasos"
    assert commands["cancelar"] == "Cancelar lo que estás haciendo"
    assert commands["solicitar"] == "Solicitar accesos al PTE"
    assert commands["perfiles"] == "Actualizar perfiles"
    assert "pendientes" not in commands  # staff commands are not offered to officers


async def test_restart_mid_walkthrough_resumes_at_the_same_card(
    api: FakeBotAPI, start_bot: Starter
) -> None:
    stop = await start_bot()
    ana = api.user(5002)
    await consent(ana)
    await ana.press("Requisitos y pasos")
    await ana.press("Siguiente ▶")
    await stop()

    await start_bot()
    (card,) = await ana.press("Siguiente ▶")
    assert "Paso 3 de 7" in card.text
    (again,) = await ana.say("/start")
    assert "Hola de nuevo" in again.text
    assert "Paso 3 de 7" in again.text


async def test_same_card_twice_is_not_an_error(api: FakeBotAPI, start_bot: Starter) -> None:
    await start_bot()
    ana = api.user(5003)
    await consent(ana)
    await ana.press("Requisitos y pasos")
    await ana.press("Siguiente ▶")
    card, previous = ana.find_button("◀ Anterior")
    await ana.tap_data(previous["callback_data"], message_id=card.message_id)
    await ana.settle()
    await ana.tap_data(previous["callback_data"], message_id=card.message_id)
    await ana.settle()
    assert rejected(api) == []
    assert any("Paso 1 de 7" in m.text for m in ana.messages)  # the card, edited in place
    # The second tap answers a question no longer open: one short line, no card again.
    assert "Ese botón es de una pregunta anterior" in ana.last.text


async def test_replies_survive_a_failing_bot_api(api: FakeBotAPI, start_bot: Starter) -> None:
    await start_bot()
    ana = api.user(5004)
    api.fail("sendMessage", times=2, status=500)
    api.fail("sendMessage", times=1, status=429, retry_after=1)
    (notice,) = await ana.say("/start", timeout=20)
    assert "Asistente PTE" in notice.text
    assert "¿Aceptas?" in notice.text


async def test_sticker_and_edited_message_get_an_answer(
    api: FakeBotAPI, start_bot: Starter
) -> None:
    await start_bot()
    ana = api.user(5005)
    await consent(ana)
    await ana.send_sticker()
    (reply,) = await ana.expect(1)
    assert "no puedo usar ese tipo de mensaje" in reply.text
    await ana.edit_last("otra cosa")
    (reply,) = await ana.expect(1)
    assert "no puedo usar ese tipo de mensaje" in reply.text
    assert rejected(api) == []


async def test_pte_bot_run_killed_mid_walkthrough_resumes(
    api: FakeBotAPI, settings: Settings
) -> None:
    """The real `pte-bot run` process, `kill -9` mid-walkthrough, restarted on the same data."""
    env = {
        **os.environ,
        "TELEGRAM_BOT_TOKEN": api.token,
        "TELEGRAM_BASE_URL": api.base_url,
        "TELEGRAM_BASE_FILE_URL": api.base_file_url,
        "PTEBOT_DATA_DIR": str(settings.data_dir),
        "PTB_TIMEDELTA": "true",
    }

    async def launch() -> asyncio.subprocess.Process:
        return await asyncio.create_subprocess_exec(
            sys.executable, "-m", "bot", "run", env=env, stdin=asyncio.subprocess.DEVNULL
        )

    ana = api.user(5006)
    process = await launch()
    try:
        await ana.say("/start", timeout=30)
        await ana.press("Acepto")
        await ana.press("Requisitos y pasos")
        await ana.press("Siguiente ▶")
        await ana.settle()  # delivered and marked; the kill comes between two answers
        process.kill()  # SIGKILL: no shutdown, no offset confirmation
        await process.wait()
        await ana.tap("Siguiente ▶")  # sent while the bot is down
        process = await launch()
        after = await ana.expect(1, timeout=30)
        after += await ana.settle()
        assert "Paso 3 de 7" in ana.messages[-1].text
        # The answer sent while the bot was down counts once; no older card comes back.
        assert sum("Paso 3 de 7" in m.text for m in after) == 1
        assert not any("Paso 1 de 7" in m.text or "Paso 2 de 7" in m.text for m in after)
        assert rejected(api) == []
    finally:
        if process.returncode is None:
            process.terminate()
            await process.wait()


async def test_pasted_password_is_deleted_from_the_chat(
    api: FakeBotAPI, start_bot: Starter
) -> None:
    await start_bot()
    ana = api.user(5007)
    await consent(ana)
    await ana.send("usuario: jperez clave: Abc123$")
    (warning,) = await ana.expect(1)
    assert "Borré tu mensaje" in warning.text
    await ana.settle()
    deleted = api.calls_to("deleteMessage")
    assert len(deleted) == 1
    assert deleted[0].ok
    assert rejected(api) == []


async def test_a_reply_that_cannot_render_is_replaced_by_an_apology_with_the_menu(
    api: FakeBotAPI, settings: Settings
) -> None:
    app = await create_app(settings)
    app.texts = broken("common.welcome_back")  # what the channel renders with
    channel = TelegramChannel(app)
    channel.worker.max_errors = 1  # given up at once: no backoff to wait out
    stop, ready = asyncio.Event(), asyncio.Event()
    polling = asyncio.create_task(run_polling(channel, stop, ready))
    try:
        await ready.wait()
        ana = api.user(5011)
        await consent(ana)
        menu, apology = await ana.say("/start", n=2)
        assert "Requisitos y pasos" in menu.button_labels
        assert apology.text.startswith("Lo siento, no pude mostrarte")
        assert apology.button_labels == ["Menú"]
        [again] = await ana.press("Menú")
        assert "Requisitos y pasos" in again.button_labels
        assert rejected(api) == []
    finally:
        stop.set()
        await polling
        await app.close()


async def test_nothing_is_kept_per_chat_once_the_chats_are_idle(
    api: FakeBotAPI, settings: Settings
) -> None:
    """Issue 18: PTB marks every chat and user it sees for a persistence the bot does not
    use; those marks, the dispatcher's queues and the outbox's per-chat queues are all gone
    once every reply is out, however many chats wrote."""
    app = await create_app(settings)
    channel = TelegramChannel(app)
    stop, ready = asyncio.Event(), asyncio.Event()
    polling = asyncio.create_task(run_polling(channel, stop, ready))
    try:
        await ready.wait()
        for number in range(3):
            user = api.user(5020 + number)
            await consent(user)
            await user.settle()
        await channel.worker.drain()
        application = channel.application
        assert application.persistence is None
        assert application._chat_ids_to_be_updated_in_persistence == set()
        assert application._user_ids_to_be_updated_in_persistence == set()
        assert dict(application.chat_data) == {}
        assert dict(application.user_data) == {}
        assert channel.updates.dispatcher.busy_chats == 0
        assert channel.updates.dispatcher._queues == {}
        assert channel.worker._queues == {}
        assert channel.worker._tasks == {}
        assert channel.worker._known == set()
        assert channel.worker._batch_of == {}
    finally:
        stop.set()
        await polling
        await app.close()


def test_a_keyboard_goes_to_ptb_as_json_text_that_httpx_can_send() -> None:
    keyboard = {"inline_keyboard": [[{"text": "Sí, Pérez <Ruiz> & Cía", "callback_data": "3:si"}]]}
    assert json.loads(_markup_json(keyboard)) == keyboard
    # orjson refuses a lone surrogate (a label built from what a user typed): the standard
    # library's ASCII escapes go instead, which the HTTP form encodes, as PTB's own would.
    odd = {"inline_keyboard": [[{"text": "raro \ud83d", "callback_data": "3:x"}]]}
    text = _markup_json(odd)
    assert json.loads(text) == odd
    httpx.Request("POST", "https://api.telegram.org/bot/sendMessage", data={"reply_markup": text})
