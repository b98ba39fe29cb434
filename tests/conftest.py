from __future__ import annotations

import os
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from pathlib import Path

import pytest

from bot.app import App, create_app
from bot.settings import Settings
from bot.store.database import Store
from tests.driver import Driver, FakeClock, MemoryMailer

os.environ.setdefault("PTB_TIMEDELTA", "true")


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(data_dir=tmp_path / "data", _env_file=None)  # type: ignore[call-arg]


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


AppFactory = Callable[[], Awaitable[App]]
StoreOpener = Callable[[Path], Awaitable[Store]]


async def close_all(closers: Iterable[Callable[[], Awaitable[None]]]) -> None:
    """Call every closer, also after one failed (the others' threads must stop too), then
    raise the first failure."""
    failures: list[Exception] = []
    for close in closers:
        try:
            await close()
        except Exception as error:
            failures.append(error)
    if failures:
        raise failures[0]


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
    await close_all(app.close for app in reversed(opened))


@pytest.fixture
async def open_store() -> AsyncIterator[StoreOpener]:
    """``Store.open`` for a test that uses the store without the app. Every store it opened
    is closed at teardown, also when the test failed before its own ``close()``: an open
    store keeps aiosqlite's thread (not a daemon) running, and pytest's exit would wait for
    it forever. Closing a store again is harmless."""
    opened: list[Store] = []

    async def open_(path: Path) -> Store:
        store = await Store.open(path)
        opened.append(store)
        return store

    yield open_
    await close_all(store.close for store in reversed(opened))


@pytest.fixture
async def user(make_app: AppFactory) -> AsyncIterator[Driver]:
    driver = Driver(await make_app())
    await driver.start()
    yield driver
    await driver.stop()
