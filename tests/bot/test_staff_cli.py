"""`pte-bot staff`: queue, show, transitions with the clock pause, CSV, backup."""

from __future__ import annotations

import argparse
import csv
import io
import sqlite3
from pathlib import Path

import pytest

from bot.staff_cli import run
from bot.workflow import TransitionError
from tests.conversations.test_access_request import to_step
from tests.driver import Driver, FakeClock, MemoryMailer


def args(action: str, **extra: object) -> argparse.Namespace:
    return argparse.Namespace(action=action, **extra)


async def shell(user: Driver, action: str, **extra: object) -> str:
    out = io.StringIO()
    await run(user.app, args(action, **extra), out)
    return out.getvalue()


async def registered(user: Driver, mailer: MemoryMailer) -> None:
    await to_step(user, mailer, "resumen")
    await user.click("Confirmar y enviar")


async def set_state(user: Driver, state: str, message: str | None = None) -> str:
    printed = await shell(
        user, "set-state", number="PTE-2026-000001", state=state, message=message, by="ana"
    )
    await user.worker.pick_up()
    await user.worker.drain()
    return printed


async def test_queue_and_show(user: Driver, mailer: MemoryMailer) -> None:
    await registered(user, mailer)
    queue = await shell(user, "list")
    assert (
        "PTE-2026-000001 · accesos · Registrado · vence 11/12/2026 (quedan 5 días hábiles)"
        in queue
    )
    shown = await shell(user, "show", number="PTE-2026-000001")
    assert "Municipalidad de Pérez <Ruiz> & Cía" in shown
    assert "No existe" in await shell(user, "show", number="PTE-2026-000999")


async def test_observed_pauses_the_clock_and_the_officer_is_told(
    user: Driver, mailer: MemoryMailer, clock: FakeClock
) -> None:
    await registered(user, mailer)  # Wed 2 Dec, due Fri 11 Dec
    await set_state(user, "En atención")
    assert "pasó a En atención" in user.screen.last.plain
    clock.advance(days=1)  # Thu 3 Dec: 4 business days left (4, 7, 10, 11)
    await set_state(user, "Observado", "Falta la firma en la resolución")
    notice = user.screen.last.plain
    assert "pasó a Observado" in notice
    assert "Falta la firma en la resolución" in notice
    clock.advance(days=11)  # Mon 14 Dec: the clock was stopped
    printed = await set_state(user, "En atención")
    assert "Plazo: 18/12/2026" in printed  # 4 business days after Mon 14 Dec
    detail = (await user.send("PTE-2026-000001"))[-1].plain
    assert "Falta la firma en la resolución" in detail  # the help desk's last message


async def test_invalid_transition_is_refused(user: Driver, mailer: MemoryMailer) -> None:
    await registered(user, mailer)
    with pytest.raises(TransitionError):
        await set_state(user, "Cerrado")


async def test_attended_says_accesses_go_by_email(user: Driver, mailer: MemoryMailer) -> None:
    await registered(user, mailer)
    await set_state(user, "En atención")
    await set_state(user, "Atendido")
    assert "nunca llegan por este chat" in user.screen.last.plain


async def test_csv_and_backup(user: Driver, mailer: MemoryMailer, tmp_path: Path) -> None:
    await registered(user, mailer)
    await shell(user, "export-csv", file=tmp_path / "t.csv")
    with (tmp_path / "t.csv").open(encoding="utf-8-sig") as handle:
        table = list(csv.reader(handle))
    assert table[0][:3] == ["Trámite", "Tipo", "Estado"]
    assert table[1][0] == "PTE-2026-000001"
    await shell(user, "backup", file=tmp_path / "copy.sqlite3")
    copy = sqlite3.connect(tmp_path / "copy.sqlite3")
    assert copy.execute("SELECT count(*) FROM tickets").fetchone() == (1,)
    copy.close()
