"""A pasted password is taken back, warned about, and nothing of it is stored."""

from __future__ import annotations

from tests.driver import Driver, MemoryMailer
from tests.walks import to_step

SECRET = "Lima2026!xq"


async def test_password_mid_request_is_deleted_and_not_stored(
    user: Driver, mailer: MemoryMailer
) -> None:
    await to_step(user, mailer, "cargo")
    question = user.screen.last.plain
    replies = await user.send(f"mi usuario es jperez y mi contraseña es {SECRET}")
    assert user.screen.deleted == [f"u-{user.screen.deleted[0][2:]}"]
    assert replies[0].key == "common.password_warning"
    assert "Borré tu mensaje" in replies[0].plain  # said only where the channel deletes it
    assert replies[-1].plain == question
    await user.stop()
    await user.app.close()
    for path in user.app.settings.data_dir.rglob("*"):
        if path.is_file():
            assert SECRET.encode() not in path.read_bytes(), path


async def test_forgotten_password_is_a_consulta_not_a_secret(user: Driver) -> None:
    await user.send("/start")
    await user.tap("btn.accept")
    replies = await user.send("olvidé mi contraseña, ¿cómo la recupero?")
    assert user.screen.deleted == []
    assert replies[-1].key == "faq.olvide_contrasena"
    replies = await user.tap("menu.consulta")
    assert replies[-1].key == "consulta.entidad"
