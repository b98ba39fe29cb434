"""Shared walks through the chat, and the test data they type.

A test that needs to stand somewhere (a given step of the request, a registered request, a
consulta at its attachments, a ticket taken by the help desk) gets there through these
walks, never by importing another test module. They press buttons by their label's template
key or choice id (``Driver.tap``), so a wording change in ``locales/es/`` does not break them.
"""

from __future__ import annotations

import json
import struct
import zlib
from collections.abc import Awaitable, Callable

from bot.bench.soak import make_pdf as make_pdf  # the one PDF maker
from bot.delivery.payload import Rendered
from tests.driver import Driver, MemoryMailer

RUC = "20131312955"
ENTITY = "Municipalidad de Pérez <Ruiz> & Cía"
DESCRIPTION = "No puedo publicar el presupuesto: el portal muestra un error 500 al guardar."
NUMBER = "PTE-2026-000001"  # the first ticket of the fake clock's year
STAFF = "9001"  # the help-desk specialist's chat


PDF = make_pdf(2)


def tiny_png() -> bytes:
    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    header = struct.pack(">IIBBBBB", 1, 1, 8, 2, 0, 0, 0)
    pixels = zlib.compress(b"\x00\xff\x00\x00")
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", pixels)
        + chunk(b"IEND", b"")
    )


async def count_rows(user: Driver, table: str) -> int:
    async with user.app.store.reading() as conn:
        rows = list(await conn.execute_fetchall(f"SELECT count(*) FROM {table}"))
    return int(rows[0][0])


async def ticket_row(user: Driver, number: str = NUMBER) -> dict[str, object]:
    async with user.app.store.reading() as conn:
        conn_rows = list(
            await conn.execute_fetchall(
                "SELECT state, due_on, paused_days_left, observed_part, assignee_chat, data"
                " FROM tickets WHERE number = ?",
                (number,),
            )
        )
    state, due, paused, part, assignee, data = conn_rows[0]
    return {"state": state, "due": due, "paused": paused, "part": part,
            "assignee": assignee, "data": json.loads(data)}  # fmt: skip


# ------------------------------------------------------------------------ the officer
async def consented(user: Driver) -> list[Rendered]:
    """/start and accept the privacy notice: the main menu is on screen."""
    await user.send("/start")
    return await user.tap("btn.accept")


async def to_step(user: Driver, mailer: MemoryMailer, until: str) -> None:
    """Walk the request with valid answers up to (not including) the step named ``until``
    ("resumen" stops at the summary, before sending)."""
    steps: list[tuple[str, Callable[[], Awaitable[list[Rendered]]]]] = [
        ("consent", lambda: user.send("/start")),
        ("accept", lambda: user.tap("btn.accept")),
        ("menu", lambda: user.tap(choice="f:solicitud")),
        ("ruc", lambda: user.send(RUC)),
        ("entidad", lambda: user.send(ENTITY)),
        ("nombres", lambda: user.send("Ana María")),
        ("apellidos", lambda: user.send("Pérez Ruiz")),
        ("dni", lambda: user.send("45678912")),
        ("cargo", lambda: user.send("Jefa de Tecnologías de la Información")),
        ("correo", lambda: user.send("ana.perez@munisjl.gob.pe")),
        ("codigo", lambda: user.send(mailer.last_code())),
        ("celular", lambda: user.send("987 654 321")),
        ("res_numero", lambda: user.send("Resolución de Alcaldía N.° 045-2026-MDSJL")),
        ("res_fecha", lambda: user.send("15/10/2026")),
        ("res_autoridad", lambda: user.tap(choice="alcalde")),
        ("res_pdf", lambda: user.upload(PDF)),
        ("justicia", lambda: user.tap("btn.no")),
        ("perfiles_modo", lambda: user.tap(choice="me")),
    ]
    for name, action in steps:
        if name == until:
            return
        await action()
    assert until == "resumen", f"unknown step {until}"


async def registered(user: Driver, mailer: MemoryMailer) -> list[Rendered]:
    """A whole request, sent: ticket ``NUMBER`` is registered."""
    await to_step(user, mailer, "resumen")
    return await user.tap("btn.confirm_send")


OFFICER = ("Rosa", "Huamán Torres", "Especialista en Transparencia", "rosa@munisjl.gob.pe")


async def who_asks(user: Driver, mailer: MemoryMailer) -> list[Rendered]:
    """Answer who asks a consulta, as someone the assistant does not know yet (``OFFICER``,
    mobile 912 345 678); returns the summary."""
    for answer in OFFICER:
        await user.send(answer)
    await user.send(mailer.last_code())
    return await user.send("912 345 678")


async def to_attachments(user: Driver) -> None:
    """A consulta up to its attachments step (Presupuesto, ``DESCRIPTION``)."""
    await consented(user)
    await user.tap(choice="f:consulta")
    await user.send(RUC)
    await user.send("Municipalidad de Prueba")
    await user.tap(choice="presupuesto")
    await user.send(DESCRIPTION)


async def consulta_sent(user: Driver, mailer: MemoryMailer) -> list[Rendered]:
    """A whole consulta without attachments, asked by ``OFFICER``, sent: ticket ``NUMBER``
    is registered."""
    await to_attachments(user)
    await user.tap("btn.done")
    await who_asks(user, mailer)
    return await user.tap("btn.confirm_send")


# ------------------------------------------------------------------------ the help desk
async def staff_member(user: Driver) -> Driver:
    """A help-desk specialist on the same app, past the privacy notice."""
    staff = await user.peer(STAFF, staff=True)
    await staff.send("/start")
    await staff.tap("btn.accept")
    return staff


async def take(staff: Driver, number: str = NUMBER) -> list[Rendered]:
    """The specialist opens the ticket's card and takes it."""
    await staff.send(f"/ticket {number}")
    return await staff.tap("btn.desk_take")


async def taken(user: Driver, mailer: MemoryMailer) -> Driver:
    """A registered request, taken by a specialist (returned)."""
    await registered(user, mailer)
    staff = await staff_member(user)
    await take(staff)
    return staff


async def consulta_taken(user: Driver, mailer: MemoryMailer) -> Driver:
    """A sent consulta, taken by a specialist (returned)."""
    await consulta_sent(user, mailer)
    staff = await staff_member(user)
    await take(staff)
    return staff


# ------------------------------------------------------------------------ Telegram's limits
MAX_TEXT = 4096  # characters in a message
MAX_CAPTION = 1024  # characters under a document
MAX_BUTTONS = 100  # buttons on one message


async def file_request(
    officer: Driver,
    mailer: MemoryMailer,
    entity: str | None,
    people: tuple[str, str, str] = ("Ana María", "Pérez Ruiz", "Jefa de TI"),
) -> None:
    """A whole access request; ``entity`` typed, or None to take the suggested name;
    ``people``: the responsible's names, surnames and cargo."""
    await officer.send("/start")
    await officer.tap("btn.accept")
    await officer.tap("menu.solicitud")
    await officer.send(RUC)
    if entity is None:
        await officer.click(f"Usar: {ENTITY}")
    else:
        await officer.send(entity)
    nombres, apellidos, cargo = people
    for answer in (nombres, apellidos, "45678912", cargo):
        await officer.send(answer)
    await officer.send(f"oficial{officer.chat_id}@munisjl.gob.pe")
    await officer.send(mailer.last_code())
    await officer.send("987 654 321")
    await officer.send("Resolución de Alcaldía N.° 045-2026-MDSJL")
    await officer.send("15/10/2026")
    await officer.tap("btn.authority_alcalde")
    await officer.upload(PDF)
    await officer.tap("btn.no")  # not of the justice system
    await officer.tap("btn.me")
    await officer.tap("btn.confirm_send")
