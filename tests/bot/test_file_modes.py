"""Issue 14, point 5: everything the program writes is private to its user, whatever the
umask: folders 0700, files 0600 (database, WAL, SHM, stored files, .eml, CSV, backup)."""

from __future__ import annotations

import argparse
import io
import os
import stat
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from bot.app import create_app
from bot.settings import Settings
from bot.staff_cli import run as staff
from tests.bot.harness import TeeMailer
from tests.driver import Driver, FakeClock, MemoryMailer
from tests.walks import to_step

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(autouse=True)
def wide_umask() -> Iterator[None]:
    """The modes must not come from the umask of whoever started the program."""
    previous = os.umask(0o022)
    try:
        yield
    finally:
        os.umask(previous)


def modes(root: Path) -> dict[str, str]:
    """Every entry under ``root`` (``root`` itself as ".") and its permission bits."""
    found = {".": oct(stat.S_IMODE(root.stat().st_mode))}
    for path in sorted(root.rglob("*")):
        found[str(path.relative_to(root))] = oct(stat.S_IMODE(path.lstat().st_mode))
    return found


def wide(found: dict[str, str], root: Path) -> dict[str, str]:
    return {
        name: mode
        for name, mode in found.items()
        if mode != ("0o700" if (root / name).is_dir() else "0o600")
    }


async def test_everything_the_program_writes_is_0600_in_0700_folders(
    tmp_path: Path, settings: Settings, clock: FakeClock
) -> None:
    data = settings.data_dir
    mailer = TeeMailer(data / "outbox")
    app = await create_app(settings, clock, mailer)
    user = Driver(app)
    await user.start()
    try:
        await to_step(user, mailer, "resumen")  # a code mailed, a PDF stored
        await user.tap("btn.confirm_send")  # the ticket, its Formato, the request mail
        await app.mail.send_due()
        export, backup = tmp_path / "tramites.csv", tmp_path / "copia.sqlite3"
        out = io.StringIO()
        await staff(app, argparse.Namespace(action="export-csv", file=export), out)
        await staff(app, argparse.Namespace(action="backup", file=backup), out)
        found = modes(data)  # while open: SQLite removes its WAL and SHM at the last close
    finally:
        await user.stop()
        await app.close()
    assert {"ptebot.sqlite3", "ptebot.sqlite3-wal", "ptebot.sqlite3-shm"} <= set(found)
    assert any(name.endswith(".eml") for name in found)
    assert any(name.startswith("files/") and len(name) > 70 for name in found)
    assert wide(found, data) == {}
    assert modes(export)["."] == modes(backup)["."] == "0o600"


async def test_an_older_installation_is_narrowed_at_start(
    settings: Settings, clock: FakeClock
) -> None:
    data = settings.data_dir
    (data / "files" / "ab" / "cd").mkdir(parents=True, mode=0o755)
    (data / "outbox").mkdir(mode=0o755)
    for name in ("ptebot.sqlite3", "outbox/old.eml", "files/ab/cd/" + "ab" * 32):
        (data / name).write_bytes(b"")
        (data / name).chmod(0o644)
    data.chmod(0o755)
    app = await create_app(settings, clock, MemoryMailer())
    await app.close()
    assert wide(modes(data), data) == {}


def test_pte_bot_writes_private_files_under_any_umask(tmp_path: Path) -> None:
    """The console script sets umask 077 itself: a backup by the staff shell is 0600 too."""
    keep = {"PATH", "HOME", "LANG", "SYSTEMROOT"}
    env = {k: v for k, v in os.environ.items() if k in keep}
    env.update({"PTEBOT_DATA_DIR": str(tmp_path / "data"), "PYTHONPATH": str(ROOT)})
    backup = tmp_path / "copia.sqlite3"
    done = subprocess.run(
        [sys.executable, "-m", "bot", "staff", "backup", str(backup)],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert wide(modes(tmp_path / "data"), tmp_path / "data") == {}
    assert modes(backup)["."] == "0o600"


def test_the_docker_volume_starts_private() -> None:
    """A named volume is created as a copy of the image's /data: owner and mode 0700."""
    dockerfile = (ROOT / "Dockerfile").read_text()
    assert "mkdir -m 0700 /data && chown ptebot /data" in dockerfile
    assert 'VOLUME ["/data"]' in dockerfile
