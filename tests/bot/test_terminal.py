"""``pte-bot chat``: a script piped on stdin, exit 0 at end of input; state kept on disk."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from bot.settings import Settings
from tests.conftest import AppFactory
from tests.driver import Driver, MemoryMailer
from tests.walks import registered


def chat(data_dir: Path, script: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PTEBOT_DATA_DIR": str(data_dir)}
    return subprocess.run(
        [sys.executable, "-m", "bot", "chat"],
        input=script,
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
        check=False,
    )


def test_piped_walkthrough_exits_zero(tmp_path: Path) -> None:
    done = chat(tmp_path, "/start\nAcepto\nRequisitos y pasos\nSiguiente\n")
    assert done.returncode == 0, done.stderr
    assert "¿Aceptas?" in done.stdout
    assert "[1] Acepto   [2] No acepto" in done.stdout
    assert "Paso 2 de 7" in done.stdout
    assert (tmp_path / "ptebot.sqlite3").exists()


def test_numbers_choose_and_a_second_run_resumes(tmp_path: Path) -> None:
    first = chat(tmp_path, "/start\n1\n1\n")
    assert "Paso 1 de 7" in first.stdout
    second = chat(tmp_path, "Siguiente\n")
    assert second.returncode == 0, second.stderr
    assert "Paso 2 de 7" in second.stdout


def test_the_local_mail_folder_is_named_at_the_terminal(tmp_path: Path) -> None:
    """Without SMTP the code is written as an .eml file; the person at this machine is told
    where (on WhatsApp or Telegram nobody can open that folder: not said there)."""
    script = "\n".join(
        [
            "/start",
            "Acepto",
            "/solicitar",
            "20131312955",
            "Municipalidad de Prueba",
            "Ana María",
            "Pérez Ruiz",
            "45678912",
            "Jefa de Tecnologías de la Información",
            "ana.perez@munisjl.gob.pe",
        ]
    )
    done = chat(tmp_path, script + "\n")
    assert done.returncode == 0, done.stderr
    assert "Paso 8 de 16" in done.stdout
    assert f"(Modo local: el correo quedó como archivo .eml en {tmp_path / 'outbox'})" in (
        done.stdout
    )


def test_html_in_user_text_is_shown_literally(tmp_path: Path) -> None:
    done = chat(tmp_path, "/start\nAcepto\n/<b>x</b>\n")
    assert "No conozco el comando /<b>x</b>." in done.stdout


async def test_staff_work_the_queue_from_another_terminal(
    make_app: AppFactory, mailer: MemoryMailer, settings: Settings
) -> None:
    officer = Driver(await make_app(), chat_id="ana", channel="terminal")
    await officer.start()
    await registered(officer, mailer)
    await officer.stop()

    def terminal(user: str, script: str, *flags: str) -> str:
        env = {**os.environ, "PTEBOT_DATA_DIR": str(settings.data_dir)}
        done = subprocess.run(
            [sys.executable, "-m", "bot", "chat", "--user", user, *flags],
            input=script, capture_output=True, text=True, env=env, timeout=60, check=False,
        )  # fmt: skip
        assert done.returncode == 0, done.stderr
        return done.stdout

    refused = terminal("luis", "/start\nAcepto\n/pendientes\n")
    assert "No conozco el comando /pendientes" in refused
    desk = terminal("rosa", "/start\nAcepto\n/pendientes\n1\nTomar\n", "--staff")
    assert "PTE-2026-000001 · Accesos · Registrado" in desk
    assert "Estado: En atención · a tu cargo" in desk
    assert "pasó a En atención" not in desk  # the officer's notice is not shown to staff
    later = terminal("ana", "hola\n")
    assert "PTE-2026-000001: tu solicitud de accesos pasó a En atención" in later
