"""Model-based tests of every flow (issue 12): sequences, not steps.

A hypothesis state machine drives the real app (real engine, real SQLite file, real
rendering) as an officer and a help-desk specialist would, in any order: a valid answer to
the open question, an invalid one, every global command, a button of the last message or of
any earlier one, a menu label or a common question typed, a file or a sticker where text is
expected, the clock moving on, and a restart (the app closed and opened again on the same
file). After every step:

* nothing reached the app's catch-all (``common.error``) and nothing is left undelivered;
* every reply renders within Telegram's limits (HTML subset, 4,096 UTF-16 units, 1-64 byte
  callback data, no empty label) and WhatsApp's (3 buttons of 20 characters, lists of 10
  rows of 24);
* "Paso k de N" always has 1 <= k <= N;
* every person a section points to exists with all their data;
* a ticket stores the request and nothing of the screens that collected it;
* a restart changes no conversation (a draft resumes at the same question).

CI runs ``PTE_MODEL_EXAMPLES`` sequences of up to ``PTE_MODEL_STEPS`` steps, derandomized
(the same inputs every run). For hunting, raise both and set ``PTE_MODEL_SEED`` to a
number to explore other sequences::

    PTE_MODEL_EXAMPLES=500 PTE_MODEL_STEPS=120 PTE_MODEL_SEED=7 \
        pytest tests/conversations/test_model.py

A failure prints the shrunk sequence of steps: keep it as a plain test in
``test_sequences.py``.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import shutil
import tempfile
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, seed, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule

from bot.app import App, create_app
from bot.channels import whatsapp_render
from bot.delivery.payload import Rendered
from bot.settings import Settings
from tests.driver import Driver, FakeClock, MemoryMailer
from tests.fakes.graph_api import TEXT_LIMIT, FakeGraphAPI, GraphRefusal, Sent
from tests.walks import MAX_BUTTONS, MAX_CAPTION, MAX_TEXT, PDF, tiny_png

EXAMPLES = int(os.environ.get("PTE_MODEL_EXAMPLES", "80"))
STEPS = int(os.environ.get("PTE_MODEL_STEPS", "60"))
SEED = os.environ.get("PTE_MODEL_SEED")

OFFICER, STAFF = "officer-1", "staff-1"
RUC = "20131312955"
PASO = re.compile(r"Paso (\d+) de (\d+)")
PERSON_FIELDS = ("nombres", "apellidos", "dni", "cargo", "email", "phone")
# What a ticket may store, by type: the request, nothing of the screens.
TICKET_KEYS = {
    "accesos": {"ruc", "entity_name", "resp", "res", "justicia", "profiles", "people"},
    "consulta": {"ruc", "entity_name", "section", "section_name", "description", "files", "resp"},
    "perfiles": {"ruc", "entity_name", "base", "sections", "action", "person", "reason"},
}

COMMANDS = (
    "/atras",
    "/cancelar",
    "/menu",
    "/start",
    "/estado",
    "/ayuda",
    "/consulta",
    "/solicitar",
    "/perfiles",
    "/mis_datos",
    "/privacidad",
)
TYPED = (
    "Sí",
    "No",
    "Continuar",
    "Empezar de nuevo",
    "Mantener",
    "Acepto",
    "menú",
    "atrás",
    "cancelar",
    "hola",
    "Solicitar accesos al PTE",
    "Hacer una consulta",
    "Estado de mis trámites",
    "Requisitos y pasos",
    "cuánto demora",
    "olvidé mi contraseña",
    "gracias",
    "xx",
    "12",
    "PTE-2026-000001",
    "PTE-2026-000077",
    "Ana123",
)
PEOPLE = (
    ("Carlos", "Quispe Mamani", "41234567", "Especialista", "carlos@munisjl.gob.pe"),
    ("Rosa", "Huamán Torres", "42345678", "Asistente", "rosa@munisjl.gob.pe"),
)


def _run(loop: asyncio.AbstractEventLoop, coro: Any) -> Any:
    return loop.run_until_complete(coro)


class Officers(RuleBasedStateMachine):
    """One officer and one specialist on one app, in any order."""

    def __init__(self) -> None:
        super().__init__()
        self.loop = asyncio.new_event_loop()
        self.dir = Path(tempfile.mkdtemp(prefix="pte-model-"))
        self.settings = Settings(data_dir=self.dir / "data", _env_file=None)  # type: ignore[call-arg]
        self.clock = FakeClock()
        self.mailer = MemoryMailer()
        self.app: App = _run(self.loop, create_app(self.settings, self.clock, self.mailer))
        self.user = Driver(self.app, OFFICER)
        _run(self.loop, self.user.start())
        self.staff: Driver = _run(self.loop, self.user.peer(STAFF, staff=True))
        self.seen = {OFFICER: 0, STAFF: 0}
        self.error_text = self.app.texts.plain("common.error", {})

    def teardown(self) -> None:
        try:
            _run(self.loop, self.user.stop())
            _run(self.loop, self.app.close())
        finally:
            self.loop.close()
            shutil.rmtree(self.dir, ignore_errors=True)

    # ------------------------------------------------------------------ helpers
    def run(self, coro: Any) -> Any:
        return _run(self.loop, coro)

    async def state_of(self, chat_id: str) -> dict[str, Any]:
        async with self.app.store.reading() as conn:
            rows = list(
                await conn.execute_fetchall(
                    "SELECT c.state FROM conversations c JOIN chat_identities i"
                    " ON i.id = c.identity_id WHERE i.external_id = ?",
                    (chat_id,),
                )
            )
        return dict(json.loads(rows[0][0])) if rows else {}

    def where(self) -> tuple[str, str, dict[str, Any]]:
        frame = self.run(self.state_of(OFFICER)).get("frame") or {}
        return frame.get("flow", ""), frame.get("step", ""), frame.get("data", {})

    def tap_last(self, driver: Driver, pick: int) -> None:
        if not driver.screen.messages:
            self.run(driver.send("hola"))
            return
        buttons = [b for row in driver.screen.last.buttons for b in row]
        if not buttons:
            self.run(driver.send("/menu"))
            return
        button = buttons[pick % len(buttons)]
        ref = str(len(driver.screen.messages))
        self.run(driver._push(driver._event(_button_kind(), button.data, message_ref=ref)))

    # -------------------------------------------------------------------- rules
    @initialize(accept=st.booleans())
    def first_contact(self, accept: bool) -> None:
        self.run(self.user.send("/start"))
        if accept:
            self.run(self.user.tap("btn.accept"))

    @rule(pick=st.integers(0, 1000))
    def answer(self, pick: int) -> None:
        """A valid answer to the open question (a button of the question when it has some)."""
        flow, step, data = self.where()
        typed = self.valid_text(flow, step, data, pick)
        if typed is not None:
            self.run(self.user.send(typed))
        elif step in ("res_pdf",) and pick % 4:
            self.run(self.user.upload(PDF))
        elif step == "adjuntos" and pick % 3 == 0:
            self.run(self.user.upload(tiny_png(), name=None, mime="image/png", photo=True))
        else:
            self.tap_last(self.user, pick)

    @rule(count=st.integers(1, 25), pick=st.integers(0, 1000))
    def walk(self, count: int, pick: int) -> None:
        """Several valid answers in a row: sequences get deep into the flows."""
        for i in range(count):
            self.answer(pick + 7 * i)

    @rule(pick=st.integers(0, 1000))
    def tap(self, pick: int) -> None:
        self.tap_last(self.user, pick)

    @rule(pick=st.integers(0, 10_000))
    def tap_an_earlier_message(self, pick: int) -> None:
        buttons = [b for m in self.user.screen.messages for row in m.buttons for b in row]
        if buttons:
            self.run(self.user.click_data(buttons[pick % len(buttons)].data))

    @rule(command=st.sampled_from(COMMANDS))
    def command(self, command: str) -> None:
        self.run(self.user.send(command))

    @rule(text=st.sampled_from(TYPED))
    def typed(self, text: str) -> None:
        self.run(self.user.send(text))

    @rule(kind=st.sampled_from(("sticker", "pdf", "png", "contact")))
    def something_else(self, kind: str) -> None:
        if kind == "sticker":
            self.run(self.user.sticker())
        elif kind == "pdf":
            self.run(self.user.upload(PDF))
        elif kind == "png":
            self.run(self.user.upload(tiny_png(), name="captura.png", mime="image/png"))
        else:
            self.run(self.user.share_contact("+51 987 654 321"))

    @rule(minutes=st.sampled_from((1, 11, 60 * 24 * 3)))
    def time_passes(self, minutes: int) -> None:
        self.clock.advance(minutes=minutes)

    @rule(pick=st.integers(0, 1000), action=st.sampled_from(("tap", "tap", "queue", "text")))
    def specialist(self, pick: int, action: str) -> None:
        if action == "queue":
            self.run(self.staff.send("/pendientes"))
        elif action == "text":
            self.run(self.staff.send("Revisa la resolución, por favor: el PDF está en blanco."))
        else:
            self.tap_last(self.staff, pick)

    @rule(number=st.integers(1, 3), action=st.sampled_from(("attend", "observe", "close")))
    def specialist_works_a_ticket(self, number: int, action: str) -> None:
        """The desk moves an officer's ticket: the officer hears of it (and Actualizar
        perfiles opens once a request is attended)."""
        self.run(self.staff.send(f"/ticket PTE-2026-{number:06d}"))
        steps = {
            "attend": ("btn.desk_take", "btn.desk_attend", "btn.desk_attend_yes"),
            "observe": ("btn.desk_take", "btn.desk_observe", "btn.desk_part_resolucion"),
            "close": ("btn.desk_close",),
        }[action]
        for key in steps:
            try:
                self.run(self.staff.tap(key))
            except AssertionError:  # not offered in this state: the walk ends here
                if key == "btn.desk_attend_yes":  # a consulta: attended with its answer, typed
                    self.run(self.staff.send("El portal ya funciona: vuelve a intentarlo."))
                return
        if action == "observe":
            self.run(self.staff.send("El PDF de la resolución está en blanco, envíalo otra vez."))

    @rule()
    def restart(self) -> None:
        before = {chat: self.run(self.state_of(chat)) for chat in (OFFICER, STAFF)}
        self.run(self.user.stop())
        self.run(self.app.close())
        self.app = self.run(create_app(self.settings, self.clock, self.mailer))
        self.app.staff["test"] = frozenset({STAFF})
        for driver in (self.user, self.staff):
            driver.app = self.app
            driver.transport.app = self.app
            driver.worker = type(driver.worker)(
                self.app.store, driver.channel, driver.transport, self.app.clock
            )
            self.run(driver.worker.start())
            self.run(driver.worker.drain())
        after = {chat: self.run(self.state_of(chat)) for chat in (OFFICER, STAFF)}
        assert after == before, "a restart changed a conversation"

    # ------------------------------------------------------------ valid answers
    def valid_text(self, flow: str, step: str, data: dict[str, Any], pick: int) -> str | None:
        """The text a careful officer would type at this step; None: tap or upload."""
        person = PEOPLE[pick % len(PEOPLE)]
        fixed = {
            "ruc": RUC,
            "nombres": "Ana María",
            "apellidos": "Pérez Ruiz",
            "dni": "45678912",
            "cargo": "Jefa de Tecnologías de la Información",
            "correo": "ana.perez@munisjl.gob.pe",
            "celular": "987654321",
            "res_numero": "Resolución de Alcaldía N.° 045-2026-MDSJL",
            "res_fecha": "15/10/2026",
            "res_autoridad_otra": "Gerente Municipal",
            "p_nombres": person[0],
            "p_apellidos": person[1],
            "p_dni": person[2],
            "p_cargo": person[3],
            "p_correo": person[4],
            "p_celular": f"98765432{pick % 10}",
            "motivo": "Cambio de personal en la oficina de tecnologías.",
            "descripcion": "No puedo publicar el presupuesto: el portal muestra un error 500.",
            "entidad_nombre": "Municipalidad de Pérez <Ruiz> & Cía",
        }
        if flow in ("solicitud", "subsanar") and step == "entidad" and pick % 2:
            return "Municipalidad de Pérez <Ruiz> & Cía"
        if flow == "consulta" and step == "entidad" and pick % 2:
            return RUC
        if flow == "perfiles" and step in ("nombres", "apellidos", "dni", "cargo", "correo"):
            return fixed["p_" + step]
        if flow == "perfiles" and step == "celular":
            return fixed["p_celular"]
        if step == "codigo" and pick % 5:
            try:
                return self.mailer.last_code()
            except AssertionError:
                return None
        forms = ("solicitud", "subsanar", "consulta", "perfiles")
        return fixed.get(step) if flow in forms else None

    # --------------------------------------------------------------- invariants
    @invariant()
    def replies_are_right(self) -> None:
        for driver in (self.user, self.staff):
            new = driver.screen.messages[self.seen[driver.chat_id] :]
            self.seen[driver.chat_id] = len(driver.screen.messages)
            for message in new:
                check_message(message, self.error_text)
                check_whatsapp(self.app, message)

    @invariant()
    def store_is_consistent(self) -> None:
        self.run(self._check_store())

    async def _check_store(self) -> None:
        async with self.app.store.reading() as conn:
            pending = list(
                await conn.execute_fetchall("SELECT count(*) FROM outbox WHERE state = 'pending'")
            )
            tickets = list(await conn.execute_fetchall("SELECT type, data FROM tickets"))
        assert pending[0][0] == 0, "a reply was left undelivered"
        for kind, raw in tickets:
            stored = set(json.loads(raw))
            extra = stored - TICKET_KEYS[kind]
            assert not extra, f"a {kind} ticket stores screen keys: {extra}"
        state = await self.state_of(OFFICER)
        frames = [state.get("frame"), state.get("suspended"), *state.get("drafts", {}).values()]
        for frame in frames:
            if frame and frame["flow"] in ("solicitud", "subsanar"):
                check_people(frame["data"])


def check_message(message: Rendered, error_text: str) -> None:
    assert error_text not in message.plain, "the app's catch-all answered"
    for k, n in PASO.findall(message.plain):
        assert 1 <= int(k) <= int(n), f"Paso {k} de {n}"
    _check_telegram(message)


def _check_telegram(message: Rendered) -> None:
    from tests.fakes.telegram_api import parse_html, utf16_len

    if message.delete_ref is not None:
        return
    parsed = parse_html(message.html)
    limit = MAX_CAPTION if message.document else MAX_TEXT
    assert utf16_len(parsed.text.strip()) <= limit
    if not message.document:
        assert parsed.text.strip(), "an empty message"
    labels = [b for row in message.buttons for b in row]
    assert len(labels) <= MAX_BUTTONS
    for button in labels:
        assert button.label.strip(), "a button without a label"
        assert 1 <= len(button.data.encode()) <= 64, button.data


def check_whatsapp(app: App, message: Rendered) -> None:
    """Every page of the message as WhatsApp would get it, checked as the Graph API does."""
    if message.delete_ref is not None:
        return
    page = 0
    while True:
        planned = whatsapp_render.plan(app.texts, message, 1, page)
        if not planned:
            break
        for body in planned:
            try:
                if body["type"] == "interactive":
                    FakeGraphAPI._check_interactive(
                        None,  # type: ignore[arg-type]
                        body["interactive"],
                        Sent("wamid.check", "1", "interactive"),
                    )
                elif body["type"] == "text":
                    assert len(body["text"]["body"]) <= TEXT_LIMIT
            except GraphRefusal as refusal:  # pragma: no cover - reported as the failure
                raise AssertionError(f"WhatsApp would refuse: {refusal}") from None
        page += 1


def check_people(data: dict[str, Any]) -> None:
    people = data.get("people", [])
    for person in people:
        missing = [field for field in PERSON_FIELDS if not person.get(field)]
        assert not missing, f"a colleague without {missing}"
    for section, ref in data.get("profiles", {}).items():
        if ref == "me":
            assert data.get("resp"), f"{section} points to a responsible not yet named"
        elif ref != "none":
            assert ref.startswith("p"), ref
            assert ref[1:].isdigit(), ref
            assert int(ref[1:]) < len(people), f"{section} points to a missing colleague"


def _button_kind() -> Any:
    from conversations.events import Kind

    return Kind.BUTTON


_settings = settings(
    max_examples=EXAMPLES,
    stateful_step_count=STEPS,
    derandomize=SEED is None,
    database=None,
    deadline=None,
    suppress_health_check=list(HealthCheck),
)
Officers.TestCase.settings = _settings
TestOfficers = Officers.TestCase
if SEED is not None:
    TestOfficers = seed(int(SEED))(TestOfficers)
