"""The fake Telegram Bot API, exercised through the real python-telegram-bot client."""

from __future__ import annotations

import asyncio
import ssl
import time
from collections.abc import AsyncIterator

import pytest
from telegram import (
    Bot,
    BotCommand,
    CallbackQuery,
    InlineKeyboardButton,
    InlineKeyboardMarkup,
    KeyboardButton,
    ReplyKeyboardMarkup,
    ReplyKeyboardRemove,
    Update,
)
from telegram.constants import ParseMode
from telegram.error import (
    BadRequest,
    Conflict,
    EndPointNotFound,
    Forbidden,
    InvalidToken,
    RetryAfter,
)
from telegram.ext import Application, CallbackQueryHandler, CommandHandler, ContextTypes
from telegram.request import HTTPXRequest

from tests.fakes.telegram_api import EntityParseError, FakeBotAPI, parse_html, utf16_len

PDF = b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n1 0 obj\n<<>>\nendobj\ntrailer\n<<>>\n%%EOF\n"
PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 32

# Built once: otherwise every httpx client PTB creates loads the CA bundle again (~75 ms each).
_TLS = ssl.create_default_context()


def _request() -> HTTPXRequest:
    return HTTPXRequest(httpx_kwargs={"verify": _TLS})


def make_bot(api: FakeBotAPI, token: str | None = None) -> Bot:
    return Bot(
        token or api.token,
        base_url=api.base_url,
        base_file_url=api.base_file_url,
        request=_request(),
        get_updates_request=_request(),
    )


@pytest.fixture
async def api() -> AsyncIterator[FakeBotAPI]:
    async with FakeBotAPI() as fake:
        yield fake
        assert fake.internal_errors == []


@pytest.fixture
async def bot(api: FakeBotAPI) -> AsyncIterator[Bot]:
    async with make_bot(api) as client:
        yield client


# ---------------------------------------------------------------------------------------------
# The bot application end to end
# ---------------------------------------------------------------------------------------------


async def test_application_conversation_through_polling(api: FakeBotAPI) -> None:
    taps: list[str] = []

    async def start(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        assert update.effective_message is not None
        keyboard = InlineKeyboardMarkup(
            [
                [InlineKeyboardButton("✅ Sí", callback_data="consent:yes")],
                [InlineKeyboardButton("No", callback_data="consent:no")],
            ]
        )
        await update.effective_message.reply_html(
            "<b>Hola</b> &amp; bienvenida", reply_markup=keyboard
        )

    async def on_tap(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        query = update.callback_query
        assert isinstance(query, CallbackQuery)
        assert query.data is not None
        taps.append(query.data)
        # PTB parses an inaccessible message (date 0) as a Message whose is_accessible is False.
        if query.message is None or not query.message.is_accessible:
            await query.answer("Ese botón ya no vale")
            return
        await query.answer("Anotado")
        await query.edit_message_text(f"Elegiste: <i>{query.data}</i>", parse_mode=ParseMode.HTML)

    app = (
        Application.builder()
        .token(api.token)
        .base_url(api.base_url)
        .base_file_url(api.base_file_url)
        .request(_request())
        .get_updates_request(_request())
        .build()
    )
    app.add_handler(CommandHandler("start", start))
    app.add_handler(CallbackQueryHandler(on_tap))
    ana = api.user(1001, "Ana", username="ana")

    async with app:
        await app.start()
        assert app.updater is not None
        await app.updater.start_polling(poll_interval=0, timeout=1)
        try:
            [welcome] = await ana.say("/start")
            assert welcome.text == "Hola & bienvenida"
            assert welcome.html == "<b>Hola</b> &amp; bienvenida"
            assert welcome.entities == [{"type": "bold", "offset": 0, "length": 4}]
            assert welcome.buttons == [["✅ Sí"], ["No"]]
            assert welcome.callback_data["No"] == "consent:no"

            [edited] = await ana.press("Sí")  # matches "✅ Sí": emoji and spacing are ignored
            assert taps == ["consent:yes"]
            assert edited.edited
            assert edited.message_id == welcome.message_id
            assert edited.text == "Elegiste: consent:yes"
            assert edited.buttons == []  # editing without reply_markup drops the keyboard
            assert [a.text for a in ana.callback_answers] == ["Anotado"]
            assert ana.last.text == "Elegiste: consent:yes"

            # An inline keyboard that is gone cannot be tapped any more.
            with pytest.raises(AssertionError, match="no inline button 'No'"):
                await ana.tap("No")

            # A forged callback is delivered (the bot must cope); nothing else happens.
            await ana.tap_data("consent:no", message_id=999)
            assert await ana.settle() == []
            assert taps == ["consent:yes", "consent:no"]
            assert ana.callback_answers[-1].text == "Ese botón ya no vale"
        finally:
            await app.updater.stop()
            await app.stop()


async def test_user_actions_produce_the_updates_ptb_parses(api: FakeBotAPI, bot: Bot) -> None:
    ana = api.user(1001)
    await ana.send("hola /ayuda")
    await ana.send_document(PDF, "dni.pdf", file_size=30_000_000, caption="mi DNI")
    await ana.send_photo(PNG, caption="foto", media_group_id="g1")
    await ana.share_contact("+34600000000")
    await ana.send_sticker()
    await ana.send_location()
    await ana.edit_last("hola otra vez")

    updates = await bot.get_updates(timeout=0)
    assert len(updates) == 7
    text, document, photo, contact, sticker, location, edited = updates
    assert text.message is not None
    assert text.message.chat.id == 1001
    assert text.message.parse_entities()
    assert text.message.text == "hola /ayuda"
    assert document.message is not None
    assert document.message.document is not None
    assert document.message.document.file_size == 30_000_000
    assert photo.message is not None
    assert photo.message.media_group_id == "g1"
    assert len(photo.message.photo) == 2
    assert contact.message is not None
    assert contact.message.contact is not None
    assert contact.message.contact.user_id == 1001
    assert sticker.message is not None
    assert sticker.message.sticker is not None
    assert location.message is not None
    assert location.message.location is not None
    assert edited.edited_message is not None
    assert edited.edited_message.message_id == text.message.message_id

    # A declared size above 20 MB cannot be downloaded through the Bot API.
    with pytest.raises(BadRequest, match="File is too big"):
        await bot.get_file(document.message.document.file_id)

    # offset confirms; nothing is delivered twice.
    assert await bot.get_updates(offset=edited.update_id + 1, timeout=0) == ()
    assert api.pending_updates == []


async def test_long_polling_returns_as_soon_as_an_update_arrives(
    api: FakeBotAPI, bot: Bot
) -> None:
    ana = api.user(1001)
    started = time.monotonic()
    poll = asyncio.create_task(bot.get_updates(timeout=5))
    assert await api._wait(lambda: bool(api.calls_to("getUpdates")), 2)
    await asyncio.sleep(0.05)
    assert not poll.done()
    await ana.send("¿hay alguien?")
    updates = await asyncio.wait_for(poll, 2)
    assert time.monotonic() - started < 1.5
    assert [u.message.text for u in updates if u.message] == ["¿hay alguien?"]


# ---------------------------------------------------------------------------------------------
# What Telegram rejects
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "parse_mode", "message"),
    [
        ("Hola <foo>x</foo>", "HTML", 'unsupported start tag "foo" at byte offset 5'),
        ("<b>Hola", "HTML", 'can\'t find end tag corresponding to start tag "b"'),
        ("<b><i>x</b></i>", "HTML", 'unmatched end tag at byte offset 7, expected "</i>"'),
        ("1 < 2", "HTML", 'unsupported start tag "" at byte offset 2'),
        ("Tom & Jerry", "HTML", 'unescaped "&" at byte offset 4'),
        ('<span class="x">a</span>', "HTML", 'tag "span" must have class "tg-spoiler"'),
        ("x" * 4097, None, "Message is too long"),
        ("😀" * 2049, None, "Message is too long"),  # 4098 UTF-16 code units
        ("   ", None, "Message text is empty"),
        ("<b></b>", "HTML", "Message text is empty"),
    ],
)
async def test_send_message_rejections(
    api: FakeBotAPI, bot: Bot, text: str, parse_mode: str | None, message: str
) -> None:
    api.user(1001)
    with pytest.raises(BadRequest) as caught:
        await bot.send_message(1001, text, parse_mode=parse_mode)
    # PTB strips "Bad Request: " and .capitalize()s the rest (lower-casing everything after
    # the first letter), hence the case-insensitive comparison.
    assert message.lower() in caught.value.message.lower()


async def test_length_is_counted_after_parsing_in_utf16(api: FakeBotAPI, bot: Bot) -> None:
    ana = api.user(1001)
    await bot.send_message(1001, "<b>" + "x" * 4096 + "</b>", parse_mode=ParseMode.HTML)
    await bot.send_message(1001, "😀" * 2048)
    first, second = await ana.expect(2)
    assert len(first.text) == 4096
    assert first.entities[0]["length"] == 4096
    assert utf16_len(second.text) == 4096


async def test_chat_keyboard_and_edit_rejections(api: FakeBotAPI, bot: Bot) -> None:
    ana = api.user(1001)
    with pytest.raises(BadRequest, match="Chat not found"):
        await bot.send_message(4242, "hola")

    too_long = InlineKeyboardMarkup([[InlineKeyboardButton("x", callback_data="é" * 33)]])
    with pytest.raises(BadRequest, match=r"(?i)button_data_invalid"):
        await bot.send_message(1001, "hola", reply_markup=too_long)
    ok = InlineKeyboardMarkup([[InlineKeyboardButton("x", callback_data="é" * 32)]])
    sent = await bot.send_message(1001, "hola", reply_markup=ok)

    with pytest.raises(BadRequest, match="Message is not modified"):
        await bot.edit_message_text(
            "hola", chat_id=1001, message_id=sent.message_id, reply_markup=ok
        )
    # Same text but the keyboard goes away: that is a modification.
    await bot.edit_message_text("hola", chat_id=1001, message_id=sent.message_id)
    with pytest.raises(BadRequest, match="Message is not modified"):
        await bot.edit_message_reply_markup(chat_id=1001, message_id=sent.message_id)
    with pytest.raises(BadRequest, match="Message to edit not found"):
        await bot.edit_message_text("x", chat_id=1001, message_id=999)

    assert await bot.delete_message(1001, sent.message_id)
    with pytest.raises(BadRequest, match="Message to delete not found"):
        await bot.delete_message(1001, sent.message_id)
    assert ana.messages[0].deleted

    # answerCallbackQuery: once only, and the text has a 200 character limit.
    await ana.tap_data("anything")
    [query] = [u.callback_query for u in await bot.get_updates(timeout=0) if u.callback_query]
    with pytest.raises(BadRequest, match="Message_too_long"):
        await bot.answer_callback_query(query.id, text="x" * 201)
    await bot.answer_callback_query(query.id, text="ok")
    with pytest.raises(BadRequest, match="Query is too old"):
        await bot.answer_callback_query(query.id)

    ana.block()
    with pytest.raises(Forbidden, match="blocked by the user"):
        await bot.send_message(1001, "¿sigues ahí?")


async def test_reply_keyboards(api: FakeBotAPI, bot: Bot) -> None:
    ana = api.user(1001)
    keyboard = ReplyKeyboardMarkup(
        [[KeyboardButton("📱 Compartir teléfono", request_contact=True)], ["Cancelar"]],
        resize_keyboard=True,
        one_time_keyboard=True,
    )
    await bot.send_message(1001, "¿Tu teléfono?", reply_markup=keyboard)
    [asked] = await ana.expect()
    assert asked.reply_keyboard == [["📱 Compartir teléfono"], ["Cancelar"]]
    assert ana.keyboard == asked.reply_keyboard
    with pytest.raises(AssertionError, match="share_contact"):
        await ana.tap("Compartir teléfono")
    await ana.tap("Cancelar")  # a plain reply button sends its text
    [update] = await bot.get_updates(timeout=0)
    assert update.message is not None
    assert update.message.text == "Cancelar"
    assert ana.keyboard is None  # one_time_keyboard

    await bot.send_message(1001, "Vale", reply_markup=ReplyKeyboardRemove())
    [removed] = await ana.expect()
    assert removed.removes_keyboard


async def test_commands(api: FakeBotAPI, bot: Bot) -> None:
    commands = [BotCommand("start", "Empezar"), BotCommand("ayuda", "Ayuda")]
    assert await bot.set_my_commands(commands, language_code="es")
    assert [c.command for c in await bot.get_my_commands(language_code="es")] == [
        "start",
        "ayuda",
    ]
    assert await bot.get_my_commands() == ()
    with pytest.raises(BadRequest, match=r"(?i)bot_command_invalid"):
        await bot.set_my_commands([BotCommand("Start", "Empezar")])
    with pytest.raises(BadRequest, match="Command description must be non-empty"):
        await bot.set_my_commands([BotCommand("start", " ")])
    with pytest.raises(BadRequest, match="Command length must not exceed 32"):
        await bot.set_my_commands([BotCommand("a" * 33, "x")])


# ---------------------------------------------------------------------------------------------
# Faults, files, protocol
# ---------------------------------------------------------------------------------------------


async def test_injected_faults(api: FakeBotAPI, bot: Bot, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PTB_TIMEDELTA", "true")  # else .retry_after warns (deprecated int)
    ana = api.user(1001)
    api.fail("sendMessage", times=1, status=429, retry_after=3)
    with pytest.raises(RetryAfter) as caught:
        await bot.send_message(1001, "hola")
    assert caught.value.retry_after.total_seconds() == 3  # type: ignore[union-attr]
    await bot.send_message(1001, "hola")
    assert [m.text for m in await ana.expect()] == ["hola"]
    assert [c.status for c in api.calls_to("sendMessage")] == [429, 200]

    api.fail(None, times=1, status=502)
    with pytest.raises(Exception, match="Bad Gateway"):
        await bot.send_chat_action(1001, "typing")

    api.flood_limit(2)
    await bot.send_message(1001, "1")
    await bot.send_message(1001, "2")
    with pytest.raises(RetryAfter):
        await bot.send_message(1001, "3")
    api.flood_limit(None)


async def test_tokens_and_unknown_methods(api: FakeBotAPI, bot: Bot) -> None:
    me = await bot.get_me()
    assert me.username == "pte_test_bot"
    assert me.is_bot
    with pytest.raises(EndPointNotFound):
        await bot.do_api_request("sendTelepathy", api_kwargs={"chat_id": 1})
    with pytest.raises(BadRequest, match=r"(?i)not implemented by FakeBotAPI"):
        await bot.forward_message(1, 2, 3)
    intruder = make_bot(api, "999:WRONG")
    try:
        with pytest.raises(InvalidToken):
            await intruder.initialize()
    finally:
        await intruder.shutdown()
    assert api.calls[-1].status == 401

    with pytest.raises(BadRequest, match="an https url must be provided"):
        await bot.set_webhook("http://example.com/hook")
    assert await bot.set_webhook("https://example.com/hook", secret_token="s3cr3t")
    assert api.webhook is not None
    assert api.webhook["secret_token"] == "s3cr3t"
    assert (await bot.get_webhook_info()).url == "https://example.com/hook"
    with pytest.raises(Conflict, match="webhook is active"):
        await bot.get_updates(timeout=0)
    assert await bot.delete_webhook()
    assert await bot.get_updates(timeout=0) == ()


async def test_group_chats_and_chat_actions(api: FakeBotAPI, bot: Bot) -> None:
    staff = api.group(-100200300, "Atención PTE")
    ana = api.user(1001)
    await bot.send_chat_action(-100200300, "typing")
    with pytest.raises(BadRequest, match="Wrong parameter action"):
        await bot.send_chat_action(-100200300, "dancing")
    await bot.send_message(-100200300, "Nueva solicitud de <b>Ana</b>", parse_mode="HTML")
    [notice] = await staff.expect()
    assert notice.text == "Nueva solicitud de Ana"
    assert staff.chat_actions == ["typing"]
    await ana.send("/tomar 1", chat=staff)  # a staff member writing in the group
    [update] = await bot.get_updates(timeout=0)
    assert update.message is not None
    assert update.message.chat.type == "supergroup"
    assert update.message.from_user is not None
    assert update.message.from_user.id == 1001


async def test_document_upload_and_download_round_trip(api: FakeBotAPI, bot: Bot) -> None:
    ana = api.user(1001)
    await bot.send_document(
        1001, PDF, filename="justificante.pdf", caption="<b>Tu</b> justificante", parse_mode="HTML"
    )
    [sent] = await ana.expect()
    assert (sent.kind, sent.filename, sent.document) == ("document", "justificante.pdf", PDF)
    assert sent.text == "Tu justificante"
    assert sent.mime_type == "application/pdf"
    with pytest.raises(BadRequest, match="Message caption is too long"):
        await bot.send_document(1001, PDF, filename="a.pdf", caption="x" * 1025)
    with pytest.raises(BadRequest, match=r"(?i)image_process_failed"):
        await bot.send_photo(1001, PDF)
    await bot.send_photo(1001, PNG, caption="mapa")
    [photo] = await ana.expect()
    assert photo.photo == PNG

    # A document the bot already sent can be re-sent by file_id.
    assert sent.file_id is not None
    await bot.send_document(1001, sent.file_id)
    [again] = await ana.expect()
    assert again.document == PDF

    # What a user sends can be fetched with getFile and downloaded from the file URL.
    await ana.send_document(b"hello, world", "nota.txt", mime_type="text/plain")
    [update] = await bot.get_updates(timeout=0)
    assert update.message is not None
    assert update.message.document is not None
    telegram_file = await update.message.document.get_file()
    assert telegram_file.file_size == len(b"hello, world")
    assert bytes(await telegram_file.download_as_bytearray()) == b"hello, world"


async def test_settle_waits_for_confirmation_and_quiet(api: FakeBotAPI, bot: Bot) -> None:
    ana = api.user(1001)
    await ana.send("hola")

    async def slow_bot() -> None:
        [update] = await bot.get_updates(timeout=0)
        await bot.get_updates(offset=update.update_id + 1, timeout=0)
        await bot.send_message(1001, "uno")
        await asyncio.sleep(0.1)
        await bot.send_message(1001, "dos")

    task = asyncio.create_task(slow_bot())
    outputs = await ana.settle(quiet=0.3)
    await task
    assert [m.text for m in outputs] == ["uno", "dos"]
    with pytest.raises(AssertionError, match="expected 1 new bot output"):
        await ana.expect(timeout=0.1)


async def test_tap_picks_the_newest_matching_keyboard(api: FakeBotAPI, bot: Bot) -> None:
    ana = api.user(1001)
    old = InlineKeyboardMarkup([[InlineKeyboardButton("Sí", callback_data="old")]])
    new = InlineKeyboardMarkup(
        [
            [InlineKeyboardButton("✅ Sí, continuar", callback_data="new")],
            [InlineKeyboardButton("📄 Ver requisitos", callback_data="req")],
            [InlineKeyboardButton("Web", url="https://transparencia.example.es")],
        ]
    )
    await bot.send_message(1001, "¿Seguro?", reply_markup=old)
    await bot.send_message(1001, "¿Seguimos?", reply_markup=new)
    await ana.expect(2)
    await ana.tap("Sí")  # exact in the old message, but the newest message matches first
    await ana.tap("requisitos")  # a unique substring
    await ana.tap_data("forged-data")
    updates = await bot.get_updates(timeout=0)
    assert [u.callback_query.data for u in updates if u.callback_query] == [
        "new",
        "req",
        "forged-data",
    ]
    with pytest.raises(AssertionError, match="not a callback button"):
        await ana.tap("Web")
    with pytest.raises(AssertionError, match="ambiguous"):
        await ana.tap("e")


# ---------------------------------------------------------------------------------------------
# The HTML parser on its own
# ---------------------------------------------------------------------------------------------


def test_parse_html_entities_in_utf16() -> None:
    parsed = parse_html(
        '😀 <b>negrita <i>y</i></b> <a href="https://x.es/?a=1&amp;b=2">enlace</a> '
        '<pre><code class="language-python">print(1)</code></pre> &lt;&#33;&#x3F;'
        "<blockquote expandable>cita</blockquote>"
    )
    assert parsed.text == "😀 negrita y enlace print(1) <!?cita"
    assert parsed.entities == [
        {"type": "bold", "offset": 3, "length": 9},
        {"type": "italic", "offset": 11, "length": 1},
        {"type": "text_link", "offset": 13, "length": 6, "url": "https://x.es/?a=1&b=2"},
        {"type": "pre", "offset": 20, "length": 8, "language": "python"},
        {"type": "expandable_blockquote", "offset": 32, "length": 4},
    ]


def test_parse_html_lenient_mode_matches_telegram_on_ampersands() -> None:
    assert parse_html("Tom & Jerry &lt &nbsp;", strict=False).text == "Tom & Jerry < &nbsp;"
    with pytest.raises(EntityParseError, match="not terminated"):
        parse_html("&lt")
