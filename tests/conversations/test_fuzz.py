"""Hostile input at every step of every flow, through the real app (issue 6, item 4).

Each scenario walks a fresh app, with valid answers, to one step of one flow and takes a
snapshot of that chat's stored conversation. Hypothesis then sends one hostile event per
example (random Unicode up to 10,000 characters, control characters and NUL, stickers and
edited messages, a file where text is expected, a contact where a file is expected, commands
with garbage arguments, forged callback data) after putting the snapshot back, so every
example starts at the same step of the same chat (chat ids are cheap, walks are not: the
snapshot is the chat's own stored state, written back as the app itself would).

Every example must:

* never reach the app's catch-all (a ``common.error`` reply means an unhandled exception);
* produce replies that render and that Telegram would accept: valid HTML in its subset,
  non-empty text, at most 4,096 UTF-16 units after entity parsing (1,024 for a document's
  caption), callback data at most 64 bytes, at most 100 buttons, no empty labels;
* store nothing invalid: the flow's answers are unchanged, wherever they now live (the open
  question, a kept draft, a pending "¿Seguro que quieres cancelar?"), unless the event was a
  typed answer the step's own validator accepts, and then exactly the validator's
  normalized value is stored;
* never download a file whose declared size is over the limit, and never change consent.

Runtime: ``FUZZ_EXAMPLES`` examples per scenario (default below), derandomized (fixed seed),
no example database, so CI runs the same inputs every time.
"""

from __future__ import annotations

import asyncio
import dataclasses
import io
import itertools
import json
import os
from collections.abc import Awaitable, Callable, Iterator, Mapping
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from bot.app import App, create_app
from bot.delivery.payload import CALLBACK_DATA_LIMIT, render
from bot.domain import files
from bot.settings import Settings
from conversations import validators
from conversations.access_request import resolution_number
from conversations.events import FileInfo, Inbound, Kind
from conversations.state import State
from conversations.status import find_number
from tests.driver import Driver, FakeClock, MemoryMailer
from tests.fakes.telegram_api import EntityParseError, parse_html, utf16_len
from tests.walks import MAX_BUTTONS, MAX_CAPTION, MAX_TEXT, PDF

FUZZ_EXAMPLES = int(os.environ.get("PTE_FUZZ_EXAMPLES", "60"))
TODAY = date(2026, 12, 2)  # FakeClock's day in Lima
RUC = "20131312955"
ENTITY = "Municipalidad de Pérez <Ruiz> & Cía"
EMAIL = "ana.perez@munisjl.gob.pe"
CHAT = "fuzz-1"

Path_ = tuple[str | int, ...]
Expected = Mapping[Path_, Any] | None  # what a typed answer stores, None: must refuse
Accepts = Callable[[str], Expected]


# --- what each step may store ---------------------------------------------------------------


def refuse(_text: str) -> Expected:
    return None


def via(check: Callable[[str], Any], *path: str | int) -> Accepts:
    """A typed answer stored at ``path`` as the validator normalized it."""

    def accepts(text: str) -> Expected:
        result = check(text)
        if isinstance(result, validators.Invalid):
            return None
        return {path: result.value}

    return accepts


def email_at(*base: str) -> Accepts:
    def accepts(text: str) -> Expected:
        result = validators.email(text)
        if isinstance(result, validators.Invalid):
            return None
        found = {
            (*base, "email"): result.value.address,
            (*base, "review"): result.value.review_domain,
        }
        if base == ("resp",):
            found[("resp", "verified")] = False
        return found

    return accepts


def description(text: str) -> Expected:
    result = validators.free_text(text, 15, 3000, multiline=True)
    if isinstance(result, validators.Invalid) or len(result.value.split()) < 4:
        return None
    return {("description",): result.value}


def ticket_number(text: str) -> Expected:
    number = find_number(text)
    return None if number is None else {("number",): number}


def other_authority(text: str) -> Expected:
    result = validators.name(text)
    if isinstance(result, validators.Invalid):
        return None
    return {("res", "autoridad"): "otra", ("res", "autoridad_texto"): result.value}


# --- walking to a step --------------------------------------------------------------------


@dataclass
class World:
    app: App
    user: Driver
    mailer: MemoryMailer


Action = Callable[[World], Awaitable[object]]


def send(text: str) -> Action:
    return lambda w: w.user.send(text)


def tap(key: str = "", choice: str = "") -> Action:
    """Press a button by its label's template key or its choice id (not by its wording)."""
    return lambda w: w.user.tap(key, choice=choice)


def upload(content: bytes) -> Action:
    return lambda w: w.user.upload(content)


async def _code(w: World) -> None:
    await w.user.send(w.mailer.last_code())


async def _attended(w: World) -> None:
    # The help desk attends it (its own tools are staff-only and tested elsewhere).
    async with w.app.store.reading() as conn:
        await conn.execute("UPDATE tickets SET state = 'atendido'")


START = [send("/start"), tap("btn.accept")]
REQUEST = [*START, tap("menu.solicitud")]
REQUEST_STEPS: list[tuple[str, Action]] = [
    ("ruc", send(RUC)),
    ("entidad", send(ENTITY)),
    ("nombres", send("Ana María")),
    ("apellidos", send("Pérez Ruiz")),
    ("dni", send("45678912")),
    ("cargo", send("Jefa de Tecnologías de la Información")),
    ("correo", send(EMAIL)),
    ("codigo", _code),
    ("celular", send("987 654 321")),
    ("res_numero", send("Resolución de Alcaldía N.° 045-2026-MDSJL")),
    ("res_fecha", send("15/10/2026")),
    ("res_autoridad", tap("btn.authority_alcalde")),
    ("res_pdf", upload(PDF)),
    ("justicia", tap("btn.no")),
    ("perfiles_modo", tap("btn.me")),
]


def _jpeg() -> bytes:
    """A photo of a page (a resolution that exists only on paper)."""
    from PIL import Image

    out = io.BytesIO()
    Image.new("RGB", (40, 60), "white").save(out, "JPEG")
    return out.getvalue()


def request_until(step: str) -> list[Action]:
    names = [name for name, _ in REQUEST_STEPS]
    last = names.index(step) if step in names else len(names)
    return [*REQUEST, *(action for _, action in REQUEST_STEPS[:last])]


REGISTERED = [*request_until("resumen"), tap("btn.confirm_send")]
PERSON = [send("Luis"), send("Quispe Mamani"), send("87654321"), send("Analista")]
PERSON += [send("lquispe@munisjl.gob.pe")]
CONSULTA = [*START, tap("menu.consulta")]
CONSULTA_FULL = [
    *CONSULTA,
    send(RUC),
    send("Municipalidad de Prueba"),
    tap(choice="presupuesto"),
    send("No puedo publicar el presupuesto: el portal muestra un error."),
]
CONSULTA_WHO = [  # who asks, someone the assistant does not know yet
    send("Rosa"),
    send("Huamán Torres"),
    send("Especialista en Transparencia"),
    send("rosa@munisjl.gob.pe"),
    _code,
    send("912345678"),
]
CONSULTA_ASKED = [*CONSULTA_FULL, tap("btn.done"), *CONSULTA_WHO]
UPDATE = [*REGISTERED, _attended, tap("menu.perfiles")]
UPDATE_PERSON = [
    *UPDATE,
    tap("btn.entity_same"),
    tap(choice="presupuesto"),
    tap("btn.continue"),
    tap("btn.action_reemplazar"),
]
STATUS = [*REGISTERED, send("/estado")]
REQUIREMENTS = [*START, tap("menu.requisitos")]


@dataclass(frozen=True)
class Scenario:
    id: str
    flow: str | None  # whose answers must not take anything invalid (None: the menu)
    step: str | None  # where the walk must have left the chat (checked)
    walk: list[Action]
    accepts: Accepts = refuse
    contact: Accepts = refuse  # a shared contact's phone, where the step takes one
    loose: bool = False  # an accepted answer also moves other data (checked: its own path)


def _scenarios() -> Iterator[Scenario]:
    yield Scenario("consent", "consent", "notice", [send("/start")])
    yield Scenario("menu", None, None, START)
    yield Scenario("menu-declined", None, None, [send("/start"), tap("btn.decline")])
    yield Scenario("mis_datos", None, None, [*START, send("/mis_datos")])
    yield Scenario("ayuda", None, None, [*START, send("/ayuda")])
    yield Scenario(
        "borrar_mis_datos", "borrar_mis_datos", "confirmar", [*START, send("/borrar_mis_datos")]
    )
    yield Scenario("privacidad", "privacidad", "notice", [*START, send("/privacidad")])
    declined = [send("/start"), tap("btn.decline"), send("/privacidad")]
    yield Scenario("privacidad-declined", "privacidad", "notice", declined)
    withdraw = [*START, send("/privacidad"), tap("btn.withdraw")]
    yield Scenario("privacidad-retirar", "privacidad", "retirar", withdraw)
    cards = ["quien", "resolucion", "formato", "envio", "plazo", "accesos", "lista"]
    for i, card in enumerate(cards):
        walk = [*REQUIREMENTS, *[tap("btn.next")] * i]
        yield Scenario(f"requisitos.{card}", "requisitos", card, walk)

    accepts: dict[str, Accepts] = {
        "ruc": via(validators.ruc, "ruc"),
        "entidad": via(lambda t: validators.free_text(t, 3, 200), "entity_name"),
        "nombres": via(validators.name, "resp", "nombres"),
        "apellidos": via(validators.name, "resp", "apellidos"),
        "dni": via(validators.dni, "resp", "dni"),
        "cargo": via(validators.name, "resp", "cargo"),
        "correo": email_at("resp"),
        "celular": via(validators.mobile, "resp", "phone"),
        "res_numero": via(resolution_number, "res", "numero"),
        "res_fecha": via(
            lambda t: _iso(validators.past_date(t, TODAY)),
            "res",
            "fecha",
        ),
    }
    for step, _ in [*REQUEST_STEPS, ("resumen", None)]:
        contact = accepts["celular"] if step == "celular" else refuse
        yield Scenario(
            f"solicitud.{step}",
            "solicitud",
            step,
            request_until(step),
            accepts.get(step, refuse),
            contact,
        )
    yield Scenario(
        "solicitud.res_autoridad_otra",
        "solicitud",
        "res_autoridad_otra",
        [*request_until("res_autoridad"), tap("btn.authority_otra")],
        other_authority,
    )
    yield Scenario(
        "solicitud.res_fotos",
        "solicitud",
        "res_fotos",
        [*request_until("res_pdf"), upload(_jpeg()), tap("btn.photos_done")],
    )
    yield Scenario(
        "solicitud.perfil_seccion",
        "solicitud",
        "perfil_seccion",
        [*request_until("perfiles_modo"), tap("btn.by_section")],
    )
    person_fields = [
        ("p_nombres", via(validators.name, "pending", "nombres")),
        ("p_apellidos", via(validators.name, "pending", "apellidos")),
        ("p_dni", via(validators.dni, "pending", "dni")),
        ("p_cargo", via(validators.name, "pending", "cargo")),
        ("p_correo", email_at("pending")),
    ]
    other = [*request_until("perfiles_modo"), tap("btn.other_person")]
    for i, (step, check) in enumerate(person_fields):
        yield Scenario(f"solicitud.{step}", "solicitud", step, [*other, *PERSON[:i]], check)
    yield Scenario(
        "solicitud.p_celular",
        "solicitud",
        "p_celular",
        [*other, *PERSON],
        via(validators.mobile, "people", 0, "phone"),
        loose=True,
    )
    yield Scenario(
        "solicitud.corregir",
        "solicitud",
        "corregir",
        [*request_until("resumen"), tap("btn.correct")],
    )
    yield Scenario(
        "solicitud.corregir_campo",
        "solicitud",
        "corregir_campo",
        [*request_until("resumen"), tap("btn.correct"), tap("btn.part_responsable")],
    )
    yield Scenario(
        "solicitud.cancelar",
        "solicitud",
        "dni",
        [*request_until("dni"), send("/cancelar")],
    )
    yield Scenario(
        "solicitud.borrador",
        "solicitud",
        None,
        [*request_until("dni"), send("/menu"), tap("menu.solicitud")],
    )

    yield Scenario(
        "consulta.entidad", "consulta", "entidad", CONSULTA, via(validators.ruc, "ruc"), loose=True
    )
    yield Scenario(
        "consulta.entidad_nombre",
        "consulta",
        "entidad_nombre",
        [*CONSULTA, send(RUC)],
        via(lambda t: validators.free_text(t, 3, 200), "entity_name"),
    )
    yield Scenario("consulta.seccion", "consulta", "seccion", CONSULTA_FULL[:-2])
    yield Scenario(
        "consulta.descripcion", "consulta", "descripcion", CONSULTA_FULL[:-1], description
    )
    yield Scenario("consulta.adjuntos", "consulta", "adjuntos", CONSULTA_FULL)
    who = [*CONSULTA_FULL, tap("btn.done")]
    who_fields = [
        ("nombres", accepts["nombres"]),
        ("apellidos", accepts["apellidos"]),
        ("cargo", accepts["cargo"]),
        ("correo", accepts["correo"]),
        ("codigo", refuse),
        ("celular", accepts["celular"]),
    ]
    for i, (step, check) in enumerate(who_fields):
        contact = accepts["celular"] if step == "celular" else refuse
        walk = [*who, *CONSULTA_WHO[:i]]
        # The mobile is the last question: the summary that follows moves screen keys too.
        loose = step == "celular"
        yield Scenario(f"consulta.{step}", "consulta", step, walk, check, contact, loose)
    known = [
        *REGISTERED,
        tap("menu.consulta"),
        tap("btn.entity_usual"),
        tap(choice="presupuesto"),
        send("No puedo publicar el presupuesto: el portal muestra un error."),
        tap("btn.done"),
    ]
    yield Scenario("consulta.quien", "consulta", "quien", known)
    yield Scenario("consulta.resumen", "consulta", "resumen", CONSULTA_ASKED)
    yield Scenario(
        "consulta.corregir", "consulta", "corregir", [*CONSULTA_ASKED, tap("btn.correct")]
    )

    yield Scenario("estado.lista", "estado", "lista", STATUS, ticket_number)
    detail = [*STATUS, tap(choice="t:PTE-2026-000001")]
    yield Scenario("estado.detalle", "estado", "detalle", detail, ticket_number)
    yield Scenario(
        "estado.anular", "estado", "anular", [*detail, tap("btn.cancel_ticket")], ticket_number
    )
    yield Scenario("respuesta.texto", "respuesta", "texto", [*detail, tap("btn.notice_reply")])

    yield Scenario("perfiles.no_permitido", "perfiles", "entidad", [*START, send("/perfiles")])
    yield Scenario("perfiles.entidad", "perfiles", "entidad", UPDATE)
    yield Scenario(
        "perfiles.secciones", "perfiles", "secciones", [*UPDATE, tap("btn.entity_same")]
    )
    yield Scenario("perfiles.accion", "perfiles", "accion", UPDATE_PERSON[:-1])
    update_fields = [
        ("nombres", via(validators.name, "person", "nombres")),
        ("apellidos", via(validators.name, "person", "apellidos")),
        ("dni", via(validators.dni, "person", "dni")),
        ("cargo", via(validators.name, "person", "cargo")),
        ("correo", email_at("person")),
    ]
    for i, (step, check) in enumerate(update_fields):
        walk = [*UPDATE_PERSON, *PERSON[:i]]
        yield Scenario(f"perfiles.{step}", "perfiles", step, walk, check)
    full_person = [*UPDATE_PERSON, *PERSON]
    yield Scenario(
        "perfiles.celular",
        "perfiles",
        "celular",
        full_person,
        via(validators.mobile, "person", "phone"),
    )
    yield Scenario(
        "perfiles.motivo",
        "perfiles",
        "motivo",
        [*full_person, send("912345678")],
        via(lambda t: validators.free_text(t, 10, 1000, multiline=True), "reason"),
    )
    yield Scenario(
        "perfiles.resumen",
        "perfiles",
        "resumen",
        [*full_person, send("912345678"), send("Rotación de personal en la oficina")],
    )


def _iso(result: validators.Valid[date] | validators.Invalid) -> Any:
    if isinstance(result, validators.Invalid):
        return result
    return validators.Valid(result.value.isoformat())


SCENARIOS = list(_scenarios())


# --- hostile events -----------------------------------------------------------------------

NASTY_TEXTS = [
    "",
    " ",
    "\x00",
    "\x00" * 50,
    "a\x00b",
    "\u202eFDP.exe",  # right-to-left override
    "\u202b\u05e9\u05dc\u05d5\u05dd \u0645\u0631\u062d\u0628\u0627\u202c",  # RTL scripts
    "e\u0301\u0301\u0301\u0301\u0301\u0301\u0301\u0301",  # stacked combining marks
    "Z\u0351\u036b\u0343\u036a\u0302\u036b\u033d\u034f\u0334\u0319\u0324\u031e\u0349\u035a",
    "👨\u200d👩\u200d👧\u200d👦" * 20,
    "🏳️\u200d🌈",
    "\ufeff\u200b\u200c\u200d\u2060",
    "\r\n\r\n\t\x0b\x0c\x1c\x1d\x1e\x85\u2028\u2029",
    "<b>negrita</b> & <script>alert(1)</script> &amp; &#0; &",
    "{{ 7*7 }} {% for x in y %} ${x} %s %(x)s {0}",
    "'; DROP TABLE tickets; --",
    "PTE-2026-000001",
    "PTE-9999-999999 y PTE-2026-000002",
    "/start",
    "mi usuario es ana y mi contraseña es Secreta123",
    "20131312955\x00",
    "４５６７８９１２",  # fullwidth digits  # noqa: RUF001
    "٤٥٦٧٨٩١٢",  # Arabic-Indic digits
    "15/10/2026\u200b",
    "ana.perez@munisjl.gob.pe\u202e",
    "+51 987 654 321\x00",
    "\U0010ffff\U000e0001\ue000",
    "A" * 4097,
]

FORGED_CHOICES = [
    "",
    "x",
    "menu",
    "f:solicitud",
    "f:mesa",
    "f:consent",
    "f:nope",
    "draft_go:solicitud",
    "draft_new:solicitud",
    "draft_go:mesa",
    "cancel_yes",
    "cancel_no",
    "accept",
    "decline",
    "known",
    "same",
    "keep",
    "resend",
    "change",
    "confirm",
    "correct",
    "done",
    "erase",
    "keep",
    "yes",
    "no",
    "fix",
    "reply",
    "cancel",
    "back",
    "next",
    "prev",
    "ready",
    "otra",
    "alcalde",
    "me",
    "other",
    "sections",
    "none",
    "p0",
    "p99",
    "presupuesto",
    "focalizada",
    "reemplazar",
    "baja",
    "continue",
    "adjuntos",
    "perfiles",
    RUC,
    "t:PTE-2026-000001",
    "t:PTE-2026-999999",
    "n:fix:PTE-2026-000001",
    "n:reply:PTE-2026-000001",
    "n:card:PTE-2026-000001",
    "n:sreply:PTE-2026-000001",
    "n:queue:",
    "n:",
    "n:fix:",
]

QID = object()  # stands for the open question's id, filled in at run time

unicode_text = st.one_of(
    st.text(max_size=40),
    st.text(
        st.characters(
            categories=["Cc", "Cf", "Co", "Cn", "Mn", "Me", "Zl", "Zp", "Zs", "So", "Lo"]
        ),
        max_size=40,
    ),
    st.text(min_size=1, max_size=12).map(lambda s: (s * 10_000)[:10_000]),
    st.sampled_from(NASTY_TEXTS),
)

file_contents = st.one_of(
    st.binary(max_size=64),
    st.sampled_from(
        [
            b"",
            b"\x7fELF\x02\x01\x01" + b"\x00" * 60,
            b"MZ\x90\x00" + b"\x00" * 60 + b"%PDF-1.7",
            PDF[: len(PDF) // 2],
            b"%PDF-1.7\n%%EOF",
            b"PK\x03\x04" + b"\x00" * 40,
            b"\x89PNG\r\n\x1a\n" + b"\x00" * 20,
            b"\xff\xd8\xff\xe0" + b"\x00" * 20,
            b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\x00" * 20,
            b"<html><script>alert(1)</script></html>",
        ]
    ),
)

file_names = st.one_of(
    st.none(),
    st.text(max_size=30),
    st.sampled_from(
        [
            "../../../etc/passwd",
            "/etc/shadow",
            "C:\\Windows\\system32\\cmd.exe",
            "resolucion\x00.pdf",
            "\u202efdp.exe",
            "CON.pdf",
            "." * 300,
            "a" * 10_000 + ".pdf",
        ]
    ),
)

sizes = st.one_of(
    st.none(),
    st.integers(min_value=-1, max_value=2 * files.MAX_DOWNLOAD_BYTES),
    st.just(files.MAX_DOWNLOAD_BYTES + 1),
    st.just(10**12),
)


@dataclass(frozen=True)
class Hostile:
    kind: Kind
    text: str = ""
    args: str = ""
    button: tuple[object, str] | str | None = None  # raw data, or (QID, choice id)
    file: FileInfo | None = None
    content: bytes = b""
    phone: str | None = None
    reply_to: str | None = None


texts = st.builds(
    Hostile,
    kind=st.just(Kind.TEXT),
    text=unicode_text,
    reply_to=st.one_of(st.none(), st.sampled_from(["1", "2", "999999", "", "x"])),
)
unsupported = st.builds(Hostile, kind=st.just(Kind.UNSUPPORTED), text=unicode_text)
uploads = st.builds(
    Hostile,
    kind=st.just(Kind.FILE),
    file=st.builds(
        FileInfo,
        file_id=st.just("f"),
        name=file_names,
        mime=st.one_of(st.none(), st.text(max_size=20), st.just("application/pdf")),
        size=sizes,
        is_photo=st.booleans(),
        group=st.one_of(st.none(), st.text(max_size=10)),
    ),
    content=file_contents,
)
contacts = st.builds(
    Hostile,
    kind=st.just(Kind.CONTACT),
    phone=st.one_of(st.none(), unicode_text, st.just("+51987654321"), st.just("51912345678")),
)
COMMANDS = [
    "start",
    "menu",
    "requisitos",
    "solicitar",
    "perfiles",
    "consulta",
    "estado",
    "atras",
    "cancelar",
    "ayuda",
    "privacidad",
    "mis_datos",
    "borrar_mis_datos",
    "pendientes",
    "ticket",
    "buscar",
    "adjuntar",
]
commands = st.builds(
    Hostile,
    kind=st.just(Kind.COMMAND),
    text=st.one_of(st.sampled_from(COMMANDS), st.text(max_size=40), st.just("x" * 10_000)),
    args=unicode_text,
)
buttons = st.builds(
    Hostile,
    kind=st.just(Kind.BUTTON),
    button=st.one_of(
        st.sampled_from(["999:x", "abc", "", ":", "0:", "-1:menu", "x" * 200, "1:" + "y" * 198]),
        st.text(max_size=80),
        st.tuples(st.just(QID), st.one_of(st.sampled_from(FORGED_CHOICES), st.text(max_size=70))),
        st.sampled_from(FORGED_CHOICES).map(lambda c: f"1:{c}"),
    ),
)
hostile_events = st.one_of(texts, texts, unsupported, uploads, contacts, commands, buttons)


# --- the harness --------------------------------------------------------------------------


def _answers(state: State, flow: str) -> dict[str, Any] | None:
    """The flow's answers wherever they live now (None: the flow was left without a draft)."""
    for frame in (state.frame, state.suspended, state.drafts.get(flow)):
        if frame is not None and frame.flow == flow:
            return frame.data
    return None


_GONE = object()  # a leaf that is not there


def _leaves(value: Any, prefix: Path_ = ()) -> dict[Path_, Any]:
    if isinstance(value, dict) and value:
        found: dict[Path_, Any] = {}
        for key, item in value.items():
            found.update(_leaves(item, (*prefix, key)))
        return found
    if isinstance(value, list) and value:
        found = {}
        for index, item in enumerate(value):
            found.update(_leaves(item, (*prefix, index)))
        return found
    return {prefix: value} if prefix else {}


def _get(data: Any, path: Path_) -> Any:
    for part in path:
        data = data[part]
    return data


def check_rendered(app: App, payload: str) -> None:
    """What Telegram would accept: this payload's message, as the channel sends it."""
    body = json.loads(payload)
    assert body.get("key") != "common.error", "the app's catch-all answered: unhandled error"
    rendered = render(app.texts, payload)
    if rendered.delete_ref is not None:
        return
    try:
        parsed = parse_html(rendered.html)
    except EntityParseError as error:  # pragma: no cover - reported as the failure
        raise AssertionError(f"{body['key']}: invalid Telegram HTML: {error}") from None
    limit = MAX_CAPTION if rendered.document else MAX_TEXT
    length = utf16_len(parsed.text.strip())
    assert length <= limit, f"{body['key']}: {length} UTF-16 units (limit {limit})"
    if not rendered.document:
        assert parsed.text.strip(), f"{body['key']}: empty message text"
    labels = [button for row in rendered.buttons for button in row]
    assert len(labels) <= MAX_BUTTONS, f"{body['key']}: {len(labels)} buttons"
    for button in labels:
        assert button.label.strip(), f"{body['key']}: a button without a label"
        assert len(button.data.encode()) <= CALLBACK_DATA_LIMIT, button.data


class Bench:
    """One app, one chat walked to the scenario's step, and its snapshot."""

    def __init__(self, runner: asyncio.Runner, data_dir: Path, scenario: Scenario) -> None:
        self.runner = runner
        self.scenario = scenario
        self.data_dir = data_dir
        self.ids = itertools.count(1)
        self.fetched: list[str] = []

    async def open(self) -> None:
        settings = Settings(data_dir=self.data_dir, _env_file=None)  # type: ignore[call-arg]
        self.mailer = MemoryMailer()
        self.app = await create_app(settings, FakeClock(), self.mailer)
        self.user = Driver(self.app, CHAT)
        await self.user.start()
        world = World(self.app, self.user, self.mailer)
        for action in self.scenario.walk:
            await action(world)
        self.snapshot = await self._state_json()
        self.state = State.from_json(self.snapshot)
        self.consent = await self._consent()
        frame = self.state.frame
        if self.scenario.step is not None:
            assert frame is not None, f"{self.scenario.id}: not in a flow after the walk"
            assert (frame.flow, frame.step) == (self.scenario.flow, self.scenario.step), (
                f"{self.scenario.id}: walk ended at {frame.flow}.{frame.step}"
            )
        elif self.scenario.flow is None:
            assert frame is None, f"{self.scenario.id}: expected the menu, at {frame}"
        self.before = self._answers(self.state)

    async def close(self) -> None:
        await self.user.stop()
        await self.app.close()

    def _answers(self, state: State) -> dict[str, Any] | None:
        flow = self.scenario.flow
        return None if flow is None else _answers(state, flow)

    async def _state_json(self) -> str:
        async with self.app.store.reading() as conn:
            rows = list(
                await conn.execute_fetchall(
                    "SELECT c.state FROM conversations c JOIN chat_identities ci"
                    " ON ci.id = c.identity_id WHERE ci.channel = 'test' AND ci.external_id = ?",
                    (CHAT,),
                )
            )
        return str(rows[0][0])

    async def _consent(self) -> list[tuple[Any, ...]]:
        async with self.app.store.reading() as conn:
            return [
                tuple(r)
                for r in await conn.execute_fetchall(
                    "SELECT k.notice_version, k.accepted FROM consents k JOIN chat_identities ci"
                    " ON ci.person_id = k.person_id WHERE ci.external_id = ? ORDER BY k.id",
                    (CHAT,),
                )
            ]

    async def _restore(self) -> None:
        async with self.app.store.reading() as conn:
            await conn.execute(
                "UPDATE conversations SET state = ? WHERE identity_id ="
                " (SELECT id FROM chat_identities WHERE channel = 'test' AND external_id = ?)",
                (self.snapshot, CHAT),
            )
            # Wrong codes typed by earlier examples would lock the code step for the rest.
            await conn.execute("UPDATE verification_codes SET tries = 0")

    def _event(self, hostile: Hostile) -> Inbound:
        event_id = f"fuzz-{next(self.ids)}"
        data = hostile.button
        if isinstance(data, tuple):
            data = f"{self.state.qid}:{data[1]}"
        if hostile.kind is Kind.BUTTON:
            assert isinstance(data, str)
            qid, _, choice = data.partition(":")
            legit = qid == str(self.state.qid) and any(c[0] == choice for c in self.state.choices)
            assume(not legit)  # a real tap of an offered button is not hostile
            return Inbound("test", CHAT, event_id, Kind.BUTTON, data, message_ref="999999")
        return Inbound(
            "test",
            CHAT,
            event_id,
            hostile.kind,
            hostile.text,
            args=hostile.args,
            file=hostile.file,
            phone=hostile.phone,
            message_ref=f"u-{event_id}",
            reply_to=hostile.reply_to,
        )

    async def run(self, hostile: Hostile) -> None:
        await self._restore()
        event = self._event(hostile)
        self.fetched.clear()

        async def fetch(file_id: str) -> bytes:
            self.fetched.append(file_id)
            return hostile.content

        rows = await self.app.process(event, fetch)
        for row in rows:
            check_rendered(self.app, row.payload)
        if hostile.file is not None and files.too_big(hostile.file.size):
            assert self.fetched == [], "a file over the limit was downloaded"
        assert await self._consent() == self.consent, "consent changed"
        self._check_stored(hostile, State.from_json(await self._state_json()))

    def _check_stored(self, hostile: Hostile, after: State) -> None:
        if self.scenario.flow is None:
            return
        now = self._answers(after)
        if now is None or self.before is None:
            return  # left without a draft: nothing kept, nothing invalid kept
        if now == self.before:
            return
        expected: Expected = None
        if hostile.kind is Kind.TEXT:
            expected = self.scenario.accepts(hostile.text)
        elif hostile.kind is Kind.CONTACT and hostile.phone is not None:
            expected = self.scenario.contact(hostile.phone)
        old, new = _leaves(self.before), _leaves(now)
        changed = {p for p in old.keys() | new.keys() if old.get(p, _GONE) != new.get(p, _GONE)}
        assert expected is not None, (
            f"{self.scenario.id}: refused input changed the answers: "
            f"{ {p: (old.get(p), new.get(p)) for p in changed} }"
        )
        for path, value in expected.items():
            assert _get(now, path) == value, (
                f"{self.scenario.id}: {path} stored {_get(now, path)!r}"
            )
        if not self.scenario.loose:
            assert changed <= set(expected), (
                f"{self.scenario.id}: also changed {changed - set(expected)}"
            )


@pytest.mark.parametrize("scenario", SCENARIOS, ids=[s.id for s in SCENARIOS])
def test_hostile_input_at_every_step(scenario: Scenario, tmp_path: Path) -> None:
    with asyncio.Runner() as runner:
        bench = Bench(runner, tmp_path / "data", scenario)
        runner.run(bench.open())
        try:

            @settings(
                max_examples=FUZZ_EXAMPLES,
                deadline=None,
                derandomize=True,
                database=None,
                suppress_health_check=[
                    HealthCheck.too_slow,
                    HealthCheck.data_too_large,
                    HealthCheck.large_base_example,
                ],
            )
            @given(hostile_events)
            def example(hostile: Hostile) -> None:
                runner.run(bench.run(hostile))

            example()
        finally:
            runner.run(bench.close())


def test_scenarios_cover_every_step_of_every_flow() -> None:
    """A new step without a fuzz scenario fails here (staff-only flows excluded)."""
    from conversations.catalog import all_flows

    covered = {(s.flow, s.step) for s in SCENARIOS}
    missing = [
        f"{flow.name}.{step.name}"
        for flow in all_flows()
        if not flow.staff_only and flow.name not in ("subsanar",)
        for step in flow.steps
        if step.answer is not None and (flow.name, step.name) not in covered
    ]
    assert missing == []


def test_the_checks_can_fail() -> None:
    """The render check catches what Telegram refuses (guards against a vacuous harness)."""

    class Texts:
        def render(self, key: str, data: Mapping[str, Any]) -> str:
            return str(data["t"])

        def label(self, key: str, data: Mapping[str, Any]) -> str:
            return key

    app: Any = dataclasses.make_dataclass("A", ["texts"])(Texts())
    for bad in ("x" * (MAX_TEXT + 1), "<b>x", "", "common.error"):
        key = "common.error" if bad == "common.error" else "k"
        payload = json.dumps({"key": key, "data": {"t": bad}, "qid": 0})
        with pytest.raises(AssertionError):
            check_rendered(app, payload)
    check_rendered(app, json.dumps({"key": "k", "data": {"t": "ok"}, "qid": 0}))
