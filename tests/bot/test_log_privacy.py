"""No personal data, code or token in the logs (issue 6, item 8).

The logs are captured as the product configures them (``bot.cli.configure_logging("INFO")``,
the default ``PTEBOT_LOG_LEVEL``: every logger at INFO, ``httpx`` at WARNING because its
request lines carry the bot token), with our own loggers (``bot``, ``conversations``) also
at DEBUG: an operator may turn those up to investigate, so they must be clean too. Third-party
DEBUG output (python-telegram-bot prints whole updates there) is not a production setting
and is not covered.

A full access request runs through Telegram (fake Bot API, real SMTP server on loopback) and
through the driver; no record's formatted message, exception text or stack may contain the
officer's DNI, email, phone, the verification code or the bot token.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path

import pytest

from bot.cli import configure_logging
from bot.settings import Settings
from conversations.events import Inbound, Kind
from tests.bot.conftest import Starter
from tests.bot.telegram_harness import (
    OFFICER_EMAIL,
    Officer,
    SmtpServer,
    smtp,  # noqa: F401  (the real SMTP server fixture)
    walk,
)
from tests.driver import Driver, MemoryMailer
from tests.fakes.telegram_api import FakeBotAPI
from tests.walks import PDF, to_step

TOKEN = "7654321098:AAHx-SecretBotTokenValue_ForLogs42"
DNI = "45678912"
PHONES = ("987654321", "987 654 321", "+51987654321")
FORMATTER = logging.Formatter()


@pytest.fixture
def product_logging(caplog: pytest.LogCaptureFixture) -> Iterator[pytest.LogCaptureFixture]:
    """The product's logging configuration, captured; restored afterwards."""
    httpx = logging.getLogger("httpx")
    saved = httpx.level
    configure_logging("INFO")
    caplog.set_level(logging.INFO)
    caplog.set_level(logging.DEBUG, logger="bot")
    caplog.set_level(logging.DEBUG, logger="conversations")
    try:
        yield caplog
    finally:
        httpx.setLevel(saved)


# The test's own servers log too (aiosmtpd the envelope, aiohttp the fake Bot API's request
# paths): they are not the product and are left out.
HARNESS_LOGGERS = ("mail.log", "aiohttp.access", "aiohttp.server")


def texts_of(records: list[logging.LogRecord]) -> list[str]:
    found = []
    for record in records:
        if record.name.startswith(HARNESS_LOGGERS):
            continue
        parts = [record.getMessage()]
        if record.exc_info:
            parts.append(FORMATTER.formatException(record.exc_info))
        if record.exc_text:
            parts.append(record.exc_text)
        if record.stack_info:
            parts.append(record.stack_info)
        found.append(f"{record.name}: " + "\n".join(parts))
    return found


def leaks(records: list[logging.LogRecord], secrets: list[str]) -> list[str]:
    return [f"{s!r} in {t!r}" for t in texts_of(records) for s in secrets if s and s in t]


def test_the_leak_check_can_fail() -> None:
    record = logging.LogRecord("x", logging.INFO, __file__, 1, "code %s for %s", ("123456",), None)
    record.args = ("123456", OFFICER_EMAIL)
    assert leaks([record], ["123456"])
    assert leaks([record], [OFFICER_EMAIL])
    assert leaks([record], [DNI]) == []


class TestTelegram:
    @pytest.fixture
    async def api(self) -> Iterator[FakeBotAPI]:  # type: ignore[misc]
        async with FakeBotAPI(token=TOKEN) as fake:
            yield fake

    @pytest.fixture
    def settings(self, tmp_path: Path, api: FakeBotAPI, smtp: SmtpServer) -> Settings:  # noqa: F811
        return Settings(  # type: ignore[call-arg]
            data_dir=tmp_path / "data",
            telegram_bot_token=api.token,
            telegram_base_url=api.base_url,
            telegram_base_file_url=api.base_file_url,
            smtp_host="127.0.0.1",
            smtp_port=smtp.port,
            smtp_starttls=False,
            helpdesk_email="mesadeayuda@example.gob.pe",
            mail_from="asistente@example.gob.pe",
            _env_file=None,
        )

    async def test_a_whole_request_on_telegram_logs_nothing_personal(
        self,
        api: FakeBotAPI,
        smtp: SmtpServer,  # noqa: F811
        start_bot: Starter,
        product_logging: pytest.LogCaptureFixture,
    ) -> None:
        stop = await start_bot()
        officer = Officer(api.user(7501, first_name="Ana"), smtp)
        await walk(officer)
        code = await smtp.inbox.code(OFFICER_EMAIL)
        registered, _formato, _menu = await officer.press("✅ Confirmar y enviar", n=3)
        assert "Solicitud registrada" in registered.text
        await smtp.inbox.wait_for("Solicitud de accesos al PTE")
        # A refused update and a failure path log too: a Bot API error mid-request.
        api.fail("sendMessage", times=1, status=502)
        await officer.user.say("hola")
        await stop()

        records = product_logging.records
        assert any("verification code issued" in r.getMessage() for r in records)
        assert any(r.name.startswith("bot") and r.levelno == logging.DEBUG for r in records)
        secrets = [DNI, OFFICER_EMAIL, code, TOKEN, TOKEN.split(":")[1], *PHONES]
        assert leaks(records, secrets) == []

    async def test_without_the_product_configuration_the_token_would_leak(
        self, api: FakeBotAPI, start_bot: Starter, caplog: pytest.LogCaptureFixture
    ) -> None:
        """Why the configuration matters, and proof the check sees the token when it is there:
        httpx at INFO logs every Bot API URL, token included."""
        httpx = logging.getLogger("httpx")
        saved = httpx.level
        httpx.setLevel(logging.NOTSET)
        caplog.set_level(logging.INFO)
        try:
            stop = await start_bot()
            await api.user(7502).say("/start")
            await stop()
        finally:
            httpx.setLevel(saved)
        assert leaks(caplog.records, [TOKEN]) != []


async def test_a_whole_request_through_the_driver_logs_nothing_personal(
    user: Driver, mailer: MemoryMailer, product_logging: pytest.LogCaptureFixture
) -> None:
    await to_step(user, mailer, "correo")
    await user.send("juan@gmail.com")  # refused: webmail
    await user.send(OFFICER_EMAIL)
    await user.send("000000")  # a wrong code
    code = mailer.last_code()
    await user.send(code)
    await user.send("987 654 321")
    await to_step_rest(user)
    replies = await user.tap("btn.confirm_send")
    assert replies[0].key == "solicitud.registrada"
    await user.send("mi usuario es ana y mi contraseña es Clave$2026")  # deleted, never stored
    repeated = Inbound("test", user.chat_id, "dup-1", Kind.TEXT, DNI)
    await user.redeliver(repeated)
    await user.redeliver(repeated)  # logged as seen before

    records = product_logging.records
    assert records, "nothing was logged at all: the capture is not working"
    secrets = [DNI, OFFICER_EMAIL, "juan@gmail.com", code, "Clave$2026", *PHONES]
    assert leaks(records, secrets) == []


async def to_step_rest(user: Driver) -> None:
    await user.send("Resolución de Alcaldía N.° 045-2026-MDSJL")
    await user.send("15/10/2026")
    await user.tap("btn.authority_alcalde")
    await user.upload(PDF)
    await user.tap("btn.no")
    await user.tap("btn.me")
