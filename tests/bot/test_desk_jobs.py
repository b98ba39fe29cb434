"""Reminders, the staff digest and auto-close, with a fake clock; each runs once."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from bot.jobs import run_all
from tests.conftest import AppFactory
from tests.driver import Driver, FakeClock, MemoryMailer
from tests.walks import NUMBER, registered, staff_member, taken, ticket_row


async def jobs(user: Driver) -> None:
    """What the bot's scheduler does every few minutes."""
    await user.deliver(await run_all(user.app, user.app.clock.now()))


async def test_observed_ticket_gets_one_reminder_after_two_business_days(
    user: Driver, mailer: MemoryMailer, clock: FakeClock
) -> None:
    staff = await taken(user, mailer)  # Wed 2 Dec
    await staff.tap("btn.desk_observe")
    await staff.tap("btn.desk_part_resolucion")
    await staff.send("Falta la firma.")
    seen = len(user.screen.messages)
    clock.advance(days=1)  # Thu 3 Dec: 1 business day
    await jobs(user)
    assert len(user.screen.messages) == seen
    clock.advance(days=1)  # Fri 4 Dec: 2 business days
    await jobs(user)
    reminder = user.screen.messages[seen:]
    assert len(reminder) == 1
    assert f"{NUMBER} sigue Observado desde el miércoles 2 de diciembre" in reminder[0].plain
    assert reminder[0].key == "aviso.recordatorio_observado"
    assert reminder[0].data["message"] == "Falta la firma."
    clock.advance(days=3)
    await jobs(user)  # once only
    assert len(user.screen.messages) == seen + 1
    await user.tap("btn.notice_fix")
    assert user.screen.last.progress == (10, 16)


async def test_no_reminder_when_the_officer_already_answered(
    user: Driver, mailer: MemoryMailer, clock: FakeClock
) -> None:
    staff = await taken(user, mailer)
    await staff.tap("btn.desk_observe")
    await staff.tap("btn.desk_part_perfiles")
    await staff.send("¿Quién verá la sección de contrataciones?")
    await user.reply(user.screen.last, "La verá Luis; lo agrego hoy.")
    seen = len(user.screen.messages)
    clock.advance(days=6)
    await jobs(user)
    assert len(user.screen.messages) == seen


async def test_staff_digest_once_a_business_day(
    user: Driver, mailer: MemoryMailer, clock: FakeClock, make_app: AppFactory
) -> None:
    await registered(user, mailer)  # due Fri 11 Dec
    staff = await staff_member(user)
    clock.moment = datetime(2026, 12, 10, 12, 0, tzinfo=UTC)  # Thu 10 Dec, 07:00 in Lima
    seen = len(staff.screen.messages)
    await jobs(user)
    assert len(staff.screen.messages) == seen  # before 08:00
    clock.advance(hours=2)  # 09:00 in Lima
    await jobs(user)
    digest = staff.screen.messages[seen:]
    assert len(digest) == 1
    assert digest[0].key == "mesa.resumen"
    assert digest[0].data["today"] == "2026-12-10"
    assert len(digest[0].data["tomorrow"]) == 1
    assert [item["number"] for item in digest[0].data["tomorrow"]] == [NUMBER]
    clock.advance(hours=3)
    await jobs(user)
    assert len(staff.screen.messages) == seen + 1  # once a day...
    restarted = await make_app()
    restarted.staff = user.app.staff
    assert await run_all(restarted, clock.now()) == []  # ...even across a restart
    await staff.tap("btn.desk_queue")
    assert staff.screen.last.key == "mesa.cola"
    assert staff.screen.last.data["total"] == 1
    clock.moment = datetime(2026, 12, 14, 14, 0, tzinfo=UTC)  # Mon 14 Dec, 09:00 Lima
    await jobs(user)
    assert staff.screen.last.key == "mesa.resumen"
    assert len(staff.screen.last.data["late"]) == 1


async def test_attended_ticket_closes_itself_after_five_business_days(
    user: Driver, mailer: MemoryMailer, clock: FakeClock
) -> None:
    staff = await taken(user, mailer)  # Wed 2 Dec
    await staff.tap("btn.desk_attend")
    await staff.tap("btn.desk_attend_yes")
    clock.moment = datetime(2026, 12, 10, 15, 0, tzinfo=UTC)  # Thu 10 Dec: 4 business days
    await jobs(user)
    assert (await ticket_row(user))["state"] == "atendido"
    clock.moment = datetime(2026, 12, 11, 15, 0, tzinfo=UTC)  # Fri 11 Dec: 5
    await jobs(user)
    assert (await ticket_row(user))["state"] == "cerrado"
    assert user.screen.last.key == "aviso.estado"
    assert user.screen.last.data["state"] == "cerrado"
    card = (await staff.send(f"/ticket {NUMBER}"))[-1]
    assert card.key == "mesa.ficha"
    assert card.data["state"] == "cerrado"
    assert "Cerrado (automático)" in card.plain  # reads as closed by the clock


async def test_an_answer_after_attention_keeps_the_ticket_open(
    user: Driver, mailer: MemoryMailer, clock: FakeClock
) -> None:
    staff = await taken(user, mailer)
    await staff.tap("btn.desk_attend")
    await staff.tap("btn.desk_attend_yes")
    await user.send(NUMBER)
    await user.tap("btn.notice_reply")
    await user.send("No me llegó el correo con los accesos.")
    clock.advance(days=14)
    await jobs(user)
    assert (await ticket_row(user))["state"] == "atendido"


async def test_with_no_specialist_the_digest_reads_no_calendar(
    make_app: AppFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Nobody to send the digest to: the jobs at start-up (run before the first poll) do not
    load the national holidays, a slow import the first updates would wait behind."""
    app = await make_app()
    app.clock.moment = datetime(2026, 12, 2, 15, 0, tzinfo=UTC)  # Wed 10:00 in Lima

    def loaded(year: int) -> None:
        raise AssertionError("the calendar was read")

    monkeypatch.setattr(app.calendar, "national_holidays", loaded)
    assert app.staff == {} or not any(app.staff.values())
    assert await run_all(app, app.clock.now()) == []
