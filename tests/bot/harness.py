"""Small helpers shared by the channel and storage tests: a locale with a broken template, a
mailer that also writes .eml files, waiting for the mail outbox, a calendar with decreed days."""

from __future__ import annotations

import tempfile
from collections.abc import Mapping
from datetime import date
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import jinja2

from bot.app import App
from bot.domain.calendar import BusinessCalendar
from bot.mail.smtp import EmlMailer
from bot.texts import Texts
from tests.driver import MemoryMailer


def broken(key: str) -> Texts:
    """The locale, with ``key`` raising as a template with a bug would."""

    class Broken(Texts):
        def render(self, name: str, data: Mapping[str, Any]) -> str:
            if name == key:
                raise jinja2.UndefinedError("'x' is undefined")
            return super().render(name, data)

    return Broken()


class TeeMailer(MemoryMailer):
    """Writes the .eml files as the product does without SMTP, and keeps the messages."""

    def __init__(self, outbox: Path) -> None:
        super().__init__()
        self.eml = EmlMailer(outbox)

    async def send(self, msg: EmailMessage) -> str:
        path = await self.eml.send(msg)
        await super().send(msg)  # once the file is there: a test woken by it can read it
        return path


async def mailer_done(app: App, count: int) -> None:
    while True:
        async with app.store.reading() as conn:
            rows = list(
                await conn.execute_fetchall(
                    "SELECT count(*) FROM mail_outbox WHERE state = 'sent'"
                )
            )
        if rows[0][0] >= count:
            return
        await app.mail.send_due()


def calendar_with(decreed: list[date]) -> BusinessCalendar:
    """The packaged calendar plus an operator file declaring ``decreed``."""
    text = "".join(f'[[dia]]\nfecha = {d.isoformat()}\nnorma = "DS de prueba"\n' for d in decreed)
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "dias_no_laborables.toml"
        path.write_text(text, encoding="utf-8")
        return BusinessCalendar(extra_files=[path])
