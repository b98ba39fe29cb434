"""First contact: greeting, the Ley 29733 notice, and what consent opens."""

from __future__ import annotations

from tests.conftest import AppFactory
from tests.driver import Driver, button_keys


def texts(messages: list) -> str:  # type: ignore[type-arg]
    return "\n".join(m.plain for m in messages)


async def test_first_message_greets_and_asks_for_consent(user: Driver) -> None:
    replies = await user.send("hola")
    assert "Soy el Asistente PTE" in texts(replies)
    notice = question = replies[-1]
    assert notice.key == "consent.notice"
    for fact in (
        "Quién los trata", "Para qué", "Qué datos", "obligatorios", "Quién los recibe",
        "Cuánto tiempo", "servidores de Telegram fuera del Perú", "ARCO",
        "Autoridad Nacional de Protección de Datos Personales", "/privacidad",
    ):  # fmt: skip
        assert fact in notice.plain
    assert question.key == "consent.notice"
    assert [b.key for b in question.buttons[0]] == ["btn.accept", "btn.decline"]
    assert [b.key for b in question.buttons[1]] == ["btn.full_notice"]


async def test_accepting_records_time_and_version_and_opens_the_menu(user: Driver) -> None:
    await user.send("/start")
    replies = await user.tap("btn.accept")
    menu = replies[-1]
    assert menu.key == "menu.main"
    assert "menu.requisitos" in button_keys(menu)
    assert "menu.ayuda" in button_keys(menu)
    async with user.app.store.reading() as conn:
        rows = list(
            await conn.execute_fetchall("SELECT notice_version, accepted, at FROM consents")
        )
    assert rows == [("2026-12", 1, "2026-12-02T15:00:00.000000+00:00")]


async def test_consent_is_asked_before_anything_else(user: Driver) -> None:
    replies = await user.send("/requisitos")
    assert replies[-1].key == "consent.notice"


async def test_typed_label_counts_as_a_tap(user: Driver) -> None:
    await user.send("/start")
    replies = await user.send("acepto")
    assert "Guardé tu aceptación" in texts(replies)


async def test_other_text_during_the_notice_asks_again(user: Driver) -> None:
    await user.send("/start")
    replies = await user.send("qué es esto")
    assert replies[0].key == "consent.choose"
    assert replies[-1].key == "consent.notice"


async def test_declining_still_allows_reading_the_requirements(user: Driver) -> None:
    await user.send("/start")
    replies = await user.tap("btn.decline")
    assert "no guardé ningún dato tuyo" in texts(replies)
    # The requirements are named once, by the menu, not twice in a row.
    assert texts(replies).count("requisitos") == 1
    menu = replies[-1]
    assert button_keys(menu) == ["menu.requisitos", "menu.ayuda", "btn.read_notice"]
    card = (await user.tap("menu.requisitos"))[-1]
    assert card.progress == (1, 7)
    async with user.app.store.reading() as conn:
        rows = list(await conn.execute_fetchall("SELECT accepted FROM consents"))
    assert rows == [(0,)]


async def test_declined_person_can_accept_later_from_privacidad(user: Driver) -> None:
    await user.send("/start")
    await user.tap("btn.decline")
    notice = (await user.send("/privacidad"))[-1]
    assert notice.key == "consent.ask"
    replies = await user.tap("btn.accept")
    assert replies[-1].key == "menu.main"


async def test_privacidad_after_accepting_shows_the_version(user: Driver) -> None:
    await user.send("/start")
    await user.tap("btn.accept")
    replies = await user.send("/privacidad")
    assert replies[-1].key == "privacy.accepted"
    assert replies[-1].data["version"] == "2026-12"


async def test_new_notice_version_asks_again(make_app: AppFactory) -> None:
    app = await make_app()
    user = Driver(app)
    await user.start()
    await user.send("/start")
    await user.tap("btn.accept")
    app.engine.services.notice_version = "2027-01"
    replies = await user.send("menú")
    assert replies[-1].key == "consent.notice"
    assert replies[-1].data["version"] == "2027-01"
    await user.stop()


async def test_the_whole_notice_is_one_tap_away_and_says_what_the_law_asks(user: Driver) -> None:
    await user.send("/start")
    replies = await user.tap("btn.full_notice")
    full, question = replies[-2:]
    for fact in (
        "Titular del banco de datos", "con domicilio en", "Finalidades", "consultas",
        "obligatorios", "si no los das, no puedo registrarlo", "Destinatarios",
        "transferencia internacional", "Telegram", "Conservación", "acceso, rectificación,",
        "Autoridad Nacional de Protección de Datos Personales", "retirarlo",
    ):  # fmt: skip
        assert fact in full.plain, fact
    assert question.key == "consent.ask"
    assert "Guardé tu aceptación" in texts(await user.tap("btn.accept"))


async def test_the_notice_names_the_channel_that_carries_the_messages(
    make_app: AppFactory,
) -> None:
    from bot.channels.terminal import CAPABILITIES as TERMINAL
    from bot.channels.whatsapp import CAPABILITIES as WHATSAPP

    app = await make_app()
    on_whatsapp = Driver(app, "2001", capabilities=WHATSAPP)
    at_terminal = Driver(app, "2002", capabilities=TERMINAL)
    for driver in (on_whatsapp, at_terminal):
        await driver.start()
    notice = (await on_whatsapp.send("/start"))[-1].plain
    assert "servidores de WhatsApp (Meta) fuera del Perú" in notice
    notice = (await at_terminal.send("/start"))[-1].plain
    assert "fuera del Perú" not in notice
    await on_whatsapp.stop()
    await at_terminal.stop()


async def test_withdrawing_consent_says_first_what_changes(user: Driver) -> None:
    await user.send("/start")
    await user.tap("btn.accept")
    await user.send("/consulta")  # something in course, then /privacidad
    await user.send("20131312955")
    replies = await user.send("/privacidad")
    assert replies[-2].key == "privacy.full"
    confirm = (await user.tap("btn.withdraw"))[-1].plain
    for change in ("ya no podrás enviar", "borro lo que tengas en curso",
                   "siguen su curso", "/borrar_mis_datos"):  # fmt: skip
        assert change in confirm
    replies = await user.tap("btn.withdraw_yes")
    assert "retiré tu consentimiento" in texts(replies)
    assert "Tienes una consulta en curso" not in texts(replies)  # the draft went
    async with user.app.store.reading() as conn:
        rows = list(await conn.execute_fetchall("SELECT accepted FROM consents ORDER BY id"))
    assert rows == [(1,), (0,)]
    replies = await user.send("/consulta")
    assert "debes aceptar el aviso de privacidad" in texts(replies)


async def test_keeping_consent_changes_nothing(user: Driver) -> None:
    await user.send("/start")
    await user.tap("btn.accept")
    await user.send("/privacidad")
    await user.tap("btn.withdraw")
    replies = await user.tap("btn.withdraw_no")
    assert "sigue como estaba" in texts(replies)
    assert replies[-1].key == "menu.main"
