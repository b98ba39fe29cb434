"""The soak, small: officers with faults and kill -9, then the store's invariants."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from datetime import timedelta
from pathlib import Path

from bot.jobs import purge_orphan_files
from tests.driver import Driver


def test_a_short_soak_keeps_every_invariant(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "bot", "bench", "--soak", "--officers", "20", "--seconds", "6",
         "--kill-every", "1.5", "--data", str(tmp_path / "soak")],
        capture_output=True, text=True, timeout=300, check=False,
        env={**os.environ, "PTEBOT_DATA_DIR": str(tmp_path / "unused")},
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    assert "all invariants hold" in done.stdout
    assert "20 tickets" in done.stdout


async def test_purge_removes_a_file_whose_row_never_committed(user: Driver) -> None:
    # The bytes are written first, then the row: a crash in between leaves bytes only.
    stored = user.app.files.put(b"%PDF-1.4 written just before a crash")
    old = time.time() - timedelta(days=2).total_seconds()
    os.utime(stored.path, (old, old))
    fresh = user.app.files.put(b"%PDF-1.4 being received right now")
    await purge_orphan_files(user.app, user.app.clock.now())
    assert not stored.path.exists()
    assert fresh.path.exists()  # within the grace day: its row may be about to commit


async def test_purge_removes_a_part_left_by_a_kill_while_writing(user: Driver) -> None:
    """Found by two copies of the suite at once: the soak's kill -9 fell inside a file's write
    and its temporary part stayed forever (the purge only knew finished files)."""
    stored = user.app.files.put(b"%PDF-1.4 a neighbour")
    part = stored.path.parent / ".tmp-killed.part"
    part.write_bytes(b"%PDF-1.4 half writ")
    old = time.time() - timedelta(days=2).total_seconds()
    os.utime(part, (old, old))
    fresh = stored.path.parent / ".tmp-now.part"
    fresh.write_bytes(b"%PDF-1.4 being written")
    await purge_orphan_files(user.app, user.app.clock.now())
    assert not part.exists()
    assert fresh.exists()  # within the grace day: it may be about to be renamed
