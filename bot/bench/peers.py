"""The PTB peers of ``pte-bot bench``: the same conversation as a stock PTB bot.

* **ceiling**: a stock ``ConversationHandler`` with the same texts and keyboards, in memory.
* **pickle**: the same handler, ``persistent=True``, with ``PicklePersistence`` flushed after
  every update (``await application.update_persistence()``): PTB's stock way to be durable.

Both say what the product says (:class:`PeerTexts`), rendered per message. ``bench --burst``
uses the same texts and handler.
"""

from __future__ import annotations

import json
import warnings
from collections.abc import Callable, Coroutine, Sequence
from pathlib import Path
from typing import Any

from telegram import InlineKeyboardButton, InlineKeyboardMarkup, Update
from telegram.constants import ParseMode
from telegram.ext import (
    Application,
    CallbackQueryHandler,
    CommandHandler,
    ContextTypes,
    ConversationHandler,
    PersistenceInput,
    PicklePersistence,
)
from telegram.warnings import PTBUserWarning

from bot.bench.fake_telegram import TOKEN, FakeBotApi, FakeTelegram
from bot.channels.telegram_transport import TelegramApp
from bot.delivery.payload import JOIN_SEPARATOR
from bot.texts import Texts
from conversations import requirements
from conversations.names import FlowName, menu_entry

CONSENT, MENU, CARD, READY = 0, 1, 10, 20  # CARD + i: showing card i


class PeerTexts:
    """What the peers say: the product's own messages, rendered per message (same work).

    The template data and button layout of each message are taken from the outbox rows the
    product committed for the first officer, so the peers follow the templates and the menu
    as they are today; the rendering (Jinja, "Paso k de N", labels) is redone per message,
    as the product's outbox worker does. The transcripts are compared after the run.
    """

    def __init__(self, texts: Texts, payloads: Sequence[str]) -> None:
        self.texts = texts
        self.messages: dict[str, dict[str, Any]] = {}
        for payload in payloads:
            body = json.loads(payload)
            self.messages.setdefault(body["key"], body)

    def has(self, key: str) -> bool:
        return key in self.messages

    def render(self, key: str) -> str:
        from bot.channels.telegram_transport import CAPABILITIES  # the peers are Telegram bots too

        body = self.messages[key]
        text = self.texts.render(key, {**body["data"], "canal": CAPABILITIES.as_data()})
        progress = body.get("progress")
        if progress:
            paso = self.texts.render("common.paso", {"k": progress[0], "n": progress[1]})
            text = paso + "\n" + text
        return text

    def keyboard(self, key: str) -> InlineKeyboardMarkup | None:
        rows = self.messages[key].get("choices")
        if not rows:
            return None
        # Callback data: the choice id alone (the product prefixes its question counter).
        return InlineKeyboardMarkup(
            [
                [
                    InlineKeyboardButton(self.texts.label(label, data), callback_data=choice)
                    for choice, label, data in row
                ]
                for row in rows
            ]
        )


Callback = Callable[[Update, ContextTypes.DEFAULT_TYPE], Coroutine[Any, Any, int]]


def conversation(peer: PeerTexts, *, persistent: bool) -> ConversationHandler[Any]:
    """The same conversation as a stock ``ConversationHandler``."""
    cards = [f"requisitos.{name}" for name in requirements.CARDS]

    async def send(chat: int, context: ContextTypes.DEFAULT_TYPE, *keys: str) -> None:
        # Several keys: one message, as the product joins an acknowledgement and a question.
        await context.bot.send_message(
            chat,
            JOIN_SEPARATOR.join(peer.render(key) for key in keys),
            parse_mode=ParseMode.HTML,
            reply_markup=peer.keyboard(keys[-1]),
        )

    def chat_of(update: Update) -> int:
        assert update.effective_chat is not None
        return update.effective_chat.id

    async def start(update: Update, context: ContextTypes.DEFAULT_TYPE) -> int:
        chat = chat_of(update)
        welcome = ("consent.welcome",) if peer.has("consent.welcome") else ()
        await send(chat, context, *welcome, "consent.notice")
        return CONSENT

    async def consent(update: Update, context: ContextTypes.DEFAULT_TYPE) -> int:
        query = update.callback_query
        assert query is not None
        await query.answer()
        accepted = query.data == "accept"
        answer = "consent.accepted" if accepted else "consent.declined"
        await send(chat_of(update), context, answer, "menu.main")
        return MENU

    async def menu(update: Update, context: ContextTypes.DEFAULT_TYPE) -> int:
        query = update.callback_query
        assert query is not None
        await query.answer()
        if query.data != menu_entry(FlowName.REQUIREMENTS):
            await send(chat_of(update), context, "menu.main")
            return MENU
        await send(chat_of(update), context, cards[0])
        return CARD

    def card(index: int) -> Callback:
        async def answer(update: Update, context: ContextTypes.DEFAULT_TYPE) -> int:
            query = update.callback_query
            assert query is not None
            assert query.message is not None
            await query.answer()
            if query.data == "menu":
                await send(chat_of(update), context, "menu.main")
                return MENU
            target = index + 1 if query.data == "next" else max(0, index - 1)
            key = cards[target] if target < len(cards) else "requisitos.ready"
            await context.bot.edit_message_text(
                peer.render(key),
                chat_id=chat_of(update),
                message_id=query.message.message_id,
                parse_mode=ParseMode.HTML,
                reply_markup=peer.keyboard(key),
            )
            return CARD + target if target < len(cards) else READY

        return answer

    async def ready(update: Update, context: ContextTypes.DEFAULT_TYPE) -> int:
        query = update.callback_query
        assert query is not None
        await query.answer()
        await send(chat_of(update), context, "menu.main")
        return MENU

    states: dict[object, list[Any]] = {
        CONSENT: [CallbackQueryHandler(consent, pattern="^(accept|decline)$")],
        MENU: [CallbackQueryHandler(menu, pattern="^f:")],
        READY: [CallbackQueryHandler(ready)],
    }
    for index in range(len(cards)):
        states[CARD + index] = [CallbackQueryHandler(card(index), pattern="^(next|prev|menu)$")]
    with warnings.catch_warnings():
        # PTB warns that with per_message=False a CallbackQueryHandler is tracked per chat and
        # user, not per message: exactly what this bot wants (per_message=True would refuse
        # the /start CommandHandler with another warning).
        warnings.filterwarnings("ignore", "If 'per_message=False'", PTBUserWarning)
        return ConversationHandler(
            entry_points=[CommandHandler("start", start)],
            states=states,
            fallbacks=[CommandHandler("start", start)],
            per_message=False,
            name="bench" if persistent else None,
            persistent=persistent,
        )


class Peer:
    """A stock PTB bot: in memory, or with ``PicklePersistence`` flushed per update."""

    def __init__(self, peer: PeerTexts, server: FakeTelegram, pickle_file: Path | None) -> None:
        self.name = "pickle" if pickle_file else "ceiling"
        builder: Any = (
            Application.builder()
            .token(TOKEN)
            .request(FakeBotApi(server))
            .get_updates_request(FakeBotApi(server))
        )
        if pickle_file is not None:
            # Only the conversations: the peer stores what it needs and no more (its best case).
            store = PersistenceInput(
                bot_data=False, chat_data=False, user_data=False, callback_data=False
            )
            # Flushed by hand after every update; the interval only has to stay out of the way.
            persistence = PicklePersistence(
                filepath=pickle_file, store_data=store, update_interval=3600
            )
            builder = builder.persistence(persistence)
        self.application: TelegramApp = builder.build()
        self.application.add_handler(conversation(peer, persistent=pickle_file is not None))
        self.flush = pickle_file is not None

    async def start(self) -> None:
        await self.application.initialize()
        await self.application.start()

    async def feed(self, update: Update) -> None:
        await self.application.process_update(update)
        if self.flush:
            await self.application.update_persistence()

    async def drain(self) -> None:
        return None

    async def stop(self) -> None:
        await self.application.stop()
        await self.application.shutdown()
