"""The due-date pause through the real app (issue 16, point 5): a ticket on a real SQLite
file, taken, observed and answered by the desk's own functions at the times a fake clock
says. The due date never moves earlier, and moves later by exactly the business days spent
Observado; nothing else moves it."""

from __future__ import annotations

import asyncio
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bot.app import App, create_app
from bot.dates import lima_date
from bot.desk import card as desk
from bot.domain import workflow
from bot.domain.records import create_ticket
from bot.domain.types import Who
from bot.settings import Settings
from tests.bot.harness import calendar_with
from tests.driver import Driver, FakeClock, MemoryMailer

STAFF = desk.Actor("test", "9001")
LIMA_10AM = time(15, 0, tzinfo=UTC)  # 10:00 in Lima


def at(day: date, minutes: int = 0) -> datetime:
    return datetime.combine(day, LIMA_10AM) + timedelta(minutes=minutes)


class Desk:
    """One app and one officer; each example files a new ticket on it."""

    def __init__(self, data_dir: Path) -> None:
        self.data_dir = data_dir
        self.clock = FakeClock()

    async def open(self) -> None:
        settings = Settings(data_dir=self.data_dir, _env_file=None)  # type: ignore[call-arg]
        self.app: App = await create_app(settings, self.clock, MemoryMailer())
        officer = Driver(self.app, "1001")
        await officer.start()
        await officer.send("/start")
        await officer.stop()
        async with self.app.store.reading() as conn:
            found = list(
                await conn.execute_fetchall(
                    "SELECT person_id, id FROM chat_identities WHERE external_id = '1001'"
                )
            )
        person, identity = found[0]
        self.who = Who(person, identity, "test", "1001")

    async def due(self, number: str) -> date:
        async with self.app.store.reading() as conn:
            found = list(
                await conn.execute_fetchall(
                    "SELECT due_on FROM tickets WHERE number = ?", (number,)
                )
            )
        return date.fromisoformat(found[0][0])

    async def file(self, registered: datetime) -> str:
        self.clock.moment = registered
        async with self.app.store.transaction(registered) as tx:
            data = {"ruc": "20131312955", "entity_name": "Municipalidad de Prueba"}
            number, _id, _due = await create_ticket(
                self.app.calendar, tx, self.who, "consulta", data
            )
            await desk.take(self.app, tx, number, STAFF)
        return number

    async def observe(self, number: str, moment: datetime) -> None:
        async with self.app.store.transaction(moment) as tx:
            await desk.observe(self.app, tx, number, "otro", "¿Qué página falla?", STAFF)

    async def answer(self, number: str, moment: datetime) -> None:
        async with self.app.store.transaction(moment) as tx:
            ticket = await workflow.load(tx, number)
            assert ticket is not None
            resumed = await desk.officer_message(self.app, tx, ticket, "La de Personal.")
            assert resumed

    async def close(self) -> None:
        await self.app.close()


registrations = st.datetimes(datetime(2025, 1, 1), datetime(2028, 6, 30)).map(
    lambda naive: naive.replace(tzinfo=UTC)
)
# (days after the last answer until the next observation, days until it is answered,
# minutes into that day): 0 days and 0 minutes is "observed and corrected within the minute".
spans = st.lists(
    st.tuples(st.integers(0, 12), st.integers(0, 20), st.integers(0, 300)), min_size=1, max_size=3
)
decreed = st.lists(st.integers(-3, 60), max_size=5)


def test_due_date_moves_by_exactly_the_business_days_spent_observado(tmp_path: Path) -> None:
    with asyncio.Runner() as runner:
        bench = Desk(tmp_path / "data")
        runner.run(bench.open())
        try:

            @settings(
                max_examples=60,
                deadline=None,
                derandomize=True,
                database=None,
                suppress_health_check=[HealthCheck.too_slow],
            )
            @given(registered=registrations, extra=decreed, pauses=spans)
            def example(
                registered: datetime, extra: list[int], pauses: list[tuple[int, int, int]]
            ) -> None:
                start = registered.date()
                bench.app.calendar = calendar_with(
                    sorted({start + timedelta(days=d) for d in extra})
                )
                runner.run(check(bench, registered, pauses))

            example()
        finally:
            runner.run(bench.close())


async def check(bench: Desk, registered: datetime, pauses: list[tuple[int, int, int]]) -> None:
    cal = bench.app.calendar
    number = await bench.file(registered)
    due = await bench.due(number)
    assert due == cal.add_business_days(lima_date(registered), 5)
    moment = registered
    for wait, length, minutes in pauses:
        observed = moment + timedelta(days=wait, minutes=1)
        answered = observed + timedelta(days=length, minutes=minutes)
        await bench.observe(number, observed)
        assert await bench.due(number) == due  # observing alone moves nothing
        await bench.answer(number, answered)
        moved = await bench.due(number)
        observed_on, answered_on = lima_date(observed), lima_date(answered)
        spent = sum(
            1
            for k in range(1, (answered_on - observed_on).days + 1)
            if cal.is_business_day(observed_on + timedelta(days=k))
        )
        assert moved >= due
        assert cal.business_days_between(due, moved) == spent
        due, moment = moved, answered
