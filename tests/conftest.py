from __future__ import annotations

import os
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import pytest

from bot.app import App, create_app
from bot.settings import Settings
from tests.driver import Driver, FakeClock, MemoryMailer

os.environ.setdefault("PTB_TIMEDELTA", "true")


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(data_dir=tmp_path / "data", _env_file=None)  # type: ignore[call-arg]


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


AppFactory = Callable[[], Awaitable[App]]


@pytest.fixture
def mailer() -> MemoryMailer:
    return MemoryMailer()


@pytest.fixture
async def make_app(
    settings: Settings, clock: FakeClock, mailer: MemoryMailer
) -> AsyncIterator[AppFactory]:
    """Open the app on the test's SQLite file; call again to 'restart' it."""
    opened: list[App] = []

    async def factory() -> App:
        app = await create_app(settings, clock, mailer)
        opened.append(app)
        return app

    yield factory
    for app in opened:
        await app.close()


@pytest.fixture
async def user(make_app: AppFactory) -> AsyncIterator[Driver]:
    driver = Driver(await make_app())
    await driver.start()
    yield driver
    await driver.stop()
