"""``pte-bot bench --soak``: many simulated officers for a set time, with faults and kills,
then the store's invariants.

A parent process starts a worker process (``python -m bot.bench.soak``) on a fresh data dir and
``SIGKILL``s it every few seconds, restarting it each time; a last run without faults lets
everyone finish. Then the parent checks the store.

Each simulated officer decides its next action only from what the store says it was last
asked (its chat's newest outbox row), so a killed worker's officers simply go on after the
restart. Faults: garbage answers (random Unicode), the same update delivered twice (same
id), double taps (two ids), transient delivery failures, a staff member moving tickets
meanwhile, and the kills.

Invariants: one ticket per officer who confirmed, and its data is theirs; no unhandled
error was ever answered (``common.error``); every ticket's history is consistent with its
state; every stored file is referenced and intact, none is missing; nothing is left in the
outboxes after the last run.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import io
import json
import logging
import os
import random
import re
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from email.message import EmailMessage
from pathlib import Path
from typing import Any

from stdnum.pe import ruc as stdnum_ruc

from bot.app import App, create_app
from bot.delivery.outbox import OutboxWorker
from bot.domain.workflow import ATTENDED, IN_PROGRESS, REGISTERED, change_state
from bot.errors import TransientDelivery
from bot.jobs import unrecorded_files
from bot.settings import Settings
from bot.store.database import OutboxRow
from bot.store.events import EVENTS_COUNT
from conversations.events import FileInfo, Inbound, Kind
from conversations.names import FlowName, menu_entry

CHANNEL = "soak"
GARBAGE = "🙂\u202e\u0301\x07" + "ñ" * 50 + "\u200f" + "x" * 9000
MAIL_LOG = "soak_mail.jsonl"
COUNTERS_LOG = "soak_counters.jsonl"
TEXT_ANSWERS: dict[str, Callable[[int], str]] = {
    "solicitud.entidad": lambda n: f"Municipalidad Distrital Soak {n % 97}",
    "solicitud.nombres": lambda n: "Ana María",
    "solicitud.apellidos": lambda n: "Pérez Ruiz",
    "solicitud.dni": lambda n: f"{40000000 + n:08d}",
    "solicitud.cargo": lambda n: "Jefa de Tecnologías de la Información",
    "solicitud.correo": lambda n: email_of(n),
    "solicitud.celular": lambda n: f"9{10000000 + n:08d}",
    "solicitud.res_numero": lambda n: f"Resolución de Alcaldía N.° {n:04d}-2026",
    "solicitud.res_fecha": lambda n: "15/10/2026",
}
BUTTONS = {
    "consent.notice": "accept",
    "menu.main": menu_entry(FlowName.ACCESS_REQUEST),
    "menu.hint": menu_entry(FlowName.ACCESS_REQUEST),
    "solicitud.res_autoridad": "alcalde",
    "perfiles.justicia": "no",
    "perfiles.modo": "me",
    "solicitud.resumen": "confirm",
    "common.draft_found": "draft_go:solicitud",
    "common.cancel_confirm": "cancel_no",
}


def email_of(n: int) -> str:
    return f"oficial{n}@muni{n % 50}.gob.pe"


def ruc_of(n: int) -> str:
    base = f"20{(n % 97) * 1_000_003 % 100_000_000:08d}"
    return base + stdnum_ruc.calc_check_digit(base)


def make_pdf(pages: int = 1, password: str | None = None) -> bytes:
    """A real PDF of blank A4 pages (encrypted with ``password``): the one PDF maker of the
    benchmarks and the tests."""
    from pypdf import PdfWriter

    writer = PdfWriter()
    for _ in range(pages):
        writer.add_blank_page(595, 842)
    if password is not None:
        writer.encrypt(user_password=password, owner_password="owner-" + password)
    out = io.BytesIO()
    writer.write(out)
    return out.getvalue()


class SoakMailer:
    """Appends each mail to a file, flushed, so codes survive a kill (at-least-once)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.codes: dict[str, str] = {}
        self._read = 0  # bytes of the log already read

    async def send(self, msg: EmailMessage) -> str:
        body = msg.get_body(("plain",))
        text = body.get_content() if body is not None else ""
        record = {"to": str(msg.get("To", "")), "subject": str(msg["Subject"]), "body": text}
        with self.path.open("a", encoding="utf-8") as handle:
            handle.write(json.dumps(record, ensure_ascii=False) + "\n")
        return "soak"

    def code_for(self, address: str) -> str | None:
        if address not in self.codes and self.path.exists():
            with self.path.open("rb") as handle:  # only what was appended since last time
                handle.seek(self._read)
                chunk = handle.read()
            complete = chunk[: chunk.rfind(b"\n") + 1]
            self._read += len(complete)
            for line in complete.decode("utf-8").splitlines():
                record = json.loads(line)
                found = re.search(r"\b(\d{6})\b", record["body"])
                if found:
                    self.codes[record["to"]] = found.group(1)  # the newest wins
        return self.codes.get(address)


class FlakyTransport:
    def __init__(self, rng: random.Random, failure_rate: float) -> None:
        self.rng = rng
        self.failure_rate = failure_rate
        self.failures = 0

    async def deliver(self, row: OutboxRow) -> str | None:
        if self.rng.random() < self.failure_rate:
            self.failures += 1
            raise TransientDelivery("soak: injected failure", retry_after=0.01)
        return str(row.id)


@dataclass
class Counters:
    events: int = 0
    garbage: int = 0
    redelivered: int = 0
    double_taps: int = 0
    staff_moves: int = 0
    done: set[int] = field(default_factory=set)


async def where_am_i(app: App, chat: str) -> tuple[bool, dict[str, Any] | None]:
    """(has a ticket, the newest message the officer was sent), in one read."""
    async with app.store.reading() as conn:
        rows = list(
            await conn.execute_fetchall(
                "SELECT (SELECT count(*) FROM tickets t JOIN chat_identities ci"
                "  ON ci.id = t.identity_id WHERE ci.channel = ?1 AND ci.external_id = ?2),"
                " (SELECT payload FROM outbox WHERE channel = ?1 AND chat_id = ?2"
                "  AND payload NOT LIKE '{\"delete_ref\"%' ORDER BY id DESC LIMIT 1)",
                (CHANNEL, chat),
            )
        )
    tickets, payload = rows[0]
    return bool(tickets), json.loads(payload) if payload else None


async def officer(
    app: App, n: int, rng: random.Random, faults: bool, mailer: SoakMailer, c: Counters
) -> None:
    chat = str(n)
    pdf = PDFS[n % len(PDFS)]
    serial = 0

    async def push(event: Inbound) -> None:
        async def fetch(_file_id: str) -> bytes:
            return pdf

        await app.process(event, fetch)
        c.events += 1
        if faults and rng.random() < 0.05:  # the channel delivers it again
            await app.process(event, fetch)
            c.redelivered += 1

    def event(kind: Kind, text: str = "", **extra: Any) -> Inbound:
        nonlocal serial
        serial += 1
        return Inbound(CHANNEL, chat, f"{os.getpid()}-{n}-{serial}", kind, text, **extra)

    while True:  # until this officer has a ticket, or the process is killed
        done, asked = await where_am_i(app, chat)
        if done:
            c.done.add(n)
            return
        key = asked["key"] if asked else ""
        if faults and asked and rng.random() < 0.08:
            c.garbage += 1
            await push(event(Kind.TEXT, GARBAGE[: rng.randint(1, len(GARBAGE))]))
            continue
        if asked is None or key == "common.error":
            await push(event(Kind.COMMAND, "start"))
        elif key in BUTTONS:
            tap = event(Kind.BUTTON, f"{asked['qid']}:{BUTTONS[key]}")
            await push(tap)
            if faults and rng.random() < 0.05:
                c.double_taps += 1
                await push(event(Kind.BUTTON, tap.text))
        elif key == "solicitud.ruc":
            await push(event(Kind.TEXT, ruc_of(n)))
        elif key in TEXT_ANSWERS:
            await push(event(Kind.TEXT, TEXT_ANSWERS[key](n)))
        elif key == "solicitud.codigo":
            code = mailer.code_for(email_of(n))
            if code is None:
                await asyncio.sleep(0.05)  # the mail outbox has not sent it yet
                continue
            await push(event(Kind.TEXT, code))
        elif key == "solicitud.res_pdf":
            info = FileInfo(file_id=f"pdf-{n}", name="resolucion.pdf", size=len(pdf))
            await push(event(Kind.FILE, file=info))
        else:  # something informative is last: ask for the open question again
            await push(event(Kind.COMMAND, "start"))


PDFS: list[bytes] = []


async def staff(app: App, rng: random.Random, c: Counters, stop: asyncio.Event) -> None:
    """A specialist taking and attending tickets while officers work."""
    while not stop.is_set():
        await asyncio.sleep(0.05)
        async with app.store.reading() as conn:
            found = list(
                await conn.execute_fetchall(
                    "SELECT number, state FROM tickets WHERE state IN (?, ?)"
                    " ORDER BY random() LIMIT 1",
                    (REGISTERED, IN_PROGRESS),
                )
            )
        if not found:
            continue
        number, state = found[0]
        target = IN_PROGRESS if state == REGISTERED else ATTENDED
        async with app.store.transaction(app.clock.now()) as tx:
            await change_state(app.calendar, tx, number, target, "staff:soak:1")
        c.staff_moves += 1


async def worker(data_dir: Path, officers: int, seed: int, faults: bool) -> None:
    """One life of the worker process: run until every officer has a ticket (or killed)."""
    logging.basicConfig(level=logging.ERROR)  # injected failures are expected, not news
    settings = Settings(data_dir=data_dir, _env_file=None)
    mailer = SoakMailer(data_dir / MAIL_LOG)
    app = await create_app(settings, mailer=mailer)
    rng = random.Random(seed)
    PDFS.extend(make_pdf(pages) for pages in (1, 2, 3))
    transport = FlakyTransport(rng, 0.05 if faults else 0.0)
    outbox = OutboxWorker(app.store, CHANNEL, transport, app.clock, max_backoff=0.05)
    await outbox.start()
    app.mail.start()
    counters = Counters()
    stop = asyncio.Event()
    staff_task = asyncio.create_task(staff(app, rng, counters, stop))

    async def pick_up() -> None:
        while not stop.is_set():
            await asyncio.sleep(0.2)
            await outbox.pick_up()

    picker = asyncio.create_task(pick_up())
    life = f"{os.getpid()}-{seed}"

    async def report() -> None:  # a killed life still leaves its counts behind
        while not stop.is_set():
            await asyncio.sleep(0.5)
            _record(data_dir, life, counters, transport.failures)

    reporter = asyncio.create_task(report())
    try:
        await asyncio.gather(
            *(officer(app, n, random.Random(seed * 100_003 + n), faults, mailer, counters)
              for n in range(1, officers + 1))
        )  # fmt: skip
    finally:
        stop.set()
        await asyncio.gather(staff_task, picker, reporter, return_exceptions=True)
        _record(data_dir, life, counters, transport.failures)
        await outbox.pick_up()
        await outbox.drain()
        await outbox.stop()
        await app.mail.send_due()
        await app.mail.stop()
        await app.close()
    figures = {"done": len(counters.done), **_counts(counters), "failures": transport.failures}
    print(json.dumps(figures))


def _record(data_dir: Path, life: str, c: Counters, failures: int) -> None:
    line = json.dumps({"life": life, **_counts(c), "failures": failures})
    with (data_dir / COUNTERS_LOG).open("a", encoding="utf-8") as handle:
        handle.write(line + "\n")


def _totals(data_dir: Path) -> dict[str, int]:
    """The last counts each life recorded, added up."""
    last: dict[str, dict[str, int]] = {}
    path = data_dir / COUNTERS_LOG
    if path.exists():
        for line in path.read_text(encoding="utf-8").splitlines():
            record = json.loads(line)
            last[record.pop("life")] = record
    totals: dict[str, int] = {}
    for record in last.values():
        for name, value in record.items():
            totals[name] = totals.get(name, 0) + value
    return totals


def _counts(c: Counters) -> dict[str, int]:
    return {"events": c.events, "garbage": c.garbage, "redelivered": c.redelivered,
            "double_taps": c.double_taps, "staff_moves": c.staff_moves}  # fmt: skip


# ---------------------------------------------------------------------------- parent
def check_invariants(data_dir: Path, officers: int) -> dict[str, Any]:
    """What must hold whatever was killed when."""
    db = sqlite3.connect(data_dir / "ptebot.sqlite3")
    problems: list[str] = []
    per_chat = dict(
        db.execute(
            "SELECT ci.external_id, count(*) FROM tickets t"
            " JOIN chat_identities ci ON ci.id = t.identity_id GROUP BY ci.external_id"
        ).fetchall()
    )
    doubled = [chat for chat, count in per_chat.items() if count != 1]
    if doubled:
        problems.append(f"{len(doubled)} officer(s) with more than one ticket")
    missing = [n for n in range(1, officers + 1) if str(n) not in per_chat]
    if missing:
        problems.append(f"{len(missing)} officer(s) without a ticket")
    for chat, data in db.execute(
        "SELECT ci.external_id, t.data FROM tickets t"
        " JOIN chat_identities ci ON ci.id = t.identity_id"
    ):
        request = json.loads(data)
        if request["resp"]["email"] != email_of(int(chat)):
            problems.append(f"ticket of {chat} holds someone else's data")
    errors = db.execute(
        'SELECT count(*) FROM outbox WHERE payload LIKE \'{"key":"common.error"%\''
    ).fetchone()[0]
    if errors:
        problems.append(f"{errors} unhandled error(s) answered")
    for number, state, first, last in db.execute(
        "SELECT t.number, t.state,"
        " (SELECT to_state FROM ticket_events e WHERE e.ticket_id = t.id ORDER BY id LIMIT 1),"
        " (SELECT to_state FROM ticket_events e WHERE e.ticket_id = t.id AND kind = 'estado'"
        "  ORDER BY id DESC LIMIT 1) FROM tickets t"
    ):
        if first != REGISTERED or last != state:
            problems.append(f"{number}: history {first}…{last} but state {state}")
    files_dir = data_dir / "files"
    referenced = {sha for (sha,) in db.execute("SELECT sha256 FROM files")}
    on_disk = {p.name for p in files_dir.rglob("*") if p.is_file() and len(p.name) == 64}
    for sha in referenced - on_disk:
        problems.append(f"file {sha[:12]} is recorded but missing")
    for path in (p for p in files_dir.rglob("*") if p.is_file() and p.name in referenced):
        if hashlib.sha256(path.read_bytes()).hexdigest() != path.name:
            problems.append(f"file {path.name[:12]} is corrupt")
    # A kill between writing a file and committing its row leaves a file without a row; the
    # purge job removes those once they are a day old: do what it would do, and count them.
    strays = unrecorded_files(files_dir, referenced, older_than=float("inf"))
    for path in strays:
        path.unlink()
    left = {p.name for p in files_dir.rglob("*") if p.is_file()} - referenced
    if left:
        problems.append(f"{len(left)} file(s) on disk that nothing records")
    unreferenced = db.execute(
        "SELECT count(*) FROM files f WHERE NOT EXISTS"
        " (SELECT 1 FROM ticket_files tf WHERE tf.sha256 = f.sha256)"
        " AND NOT EXISTS (SELECT 1 FROM conversations c WHERE instr(c.state, f.sha256) > 0)"
    ).fetchone()[0]
    pending = db.execute("SELECT count(*) FROM outbox WHERE state = 'pending'").fetchone()[0]
    mails = db.execute("SELECT count(*) FROM mail_outbox WHERE state = 'pending'").fetchone()[0]
    if pending or mails:
        problems.append(f"{pending} message(s) and {mails} mail(s) left undelivered")
    figures = {
        "tickets": sum(per_chat.values()),
        "events_processed": db.execute(EVENTS_COUNT).fetchone()[0],
        "ticket_events": db.execute("SELECT count(*) FROM ticket_events").fetchone()[0],
        "outbox_rows": db.execute("SELECT count(*) FROM outbox").fetchone()[0],
        "files": len(referenced),
        "files_awaiting_purge": unreferenced,
        "unrecorded_files_purged": len(strays),
    }
    db.close()
    return {"problems": problems, **figures}


def run_soak(args: argparse.Namespace) -> int:
    data_dir = Path(args.data or tempfile.mkdtemp(prefix="pte-soak-"))
    data_dir.mkdir(parents=True, exist_ok=True)
    rng = random.Random(args.seed)
    started = time.monotonic()
    deadline = started + args.seconds
    kills = lives = 0
    command = [sys.executable, "-m", "bot.bench.soak", str(data_dir), str(args.officers)]
    while time.monotonic() < deadline:
        lives += 1
        child = _spawn([*command, str(args.seed + lives), "faults"])
        life = rng.uniform(0.5, 1.5) * args.kill_every
        try:
            child.wait(timeout=min(life, max(0.1, deadline - time.monotonic())))
            break  # everyone finished before the kill
        except subprocess.TimeoutExpired:  # time for the kill
            child.send_signal(signal.SIGKILL)
            child.wait()
            kills += 1
    lives += 1
    final = _spawn([*command, str(args.seed + lives), "calm"])
    stuck = False
    try:
        final.communicate(timeout=max(600, args.seconds * 5))
    except subprocess.TimeoutExpired:
        final.kill()
        final.wait()
        stuck = True
    elapsed = time.monotonic() - started
    result = check_invariants(data_dir, args.officers)
    if stuck:
        result["problems"].append("the last run, without faults, did not finish")
    summary = {
        "officers": args.officers,
        "seconds": round(elapsed, 1),
        "kills": kills,
        "worker_lives": lives,
        "faults_and_inputs": _totals(data_dir),
        **result,
        "data_dir": str(data_dir),
    }
    print(json.dumps(summary, ensure_ascii=False, indent=2))
    totals = summary["faults_and_inputs"]
    print(
        f"soak: {args.officers} officers, {elapsed:.0f} s, {kills} kill(s) -9, "
        f"{totals.get('garbage', 0)} garbage inputs, {totals.get('redelivered', 0)} redeliveries, "
        f"{totals.get('double_taps', 0)} double taps, {totals.get('failures', 0)} delivery "
        f"failures, {result['tickets']} tickets, {result['events_processed']} updates: "
        + ("all invariants hold" if not result["problems"] else "; ".join(result["problems"]))
    )
    return 0 if not result["problems"] else 1


def _spawn(command: list[str]) -> subprocess.Popen[str]:
    return subprocess.Popen(command, stdout=subprocess.PIPE, text=True)


def main() -> None:
    data_dir, officers, seed, mode = sys.argv[1:5]
    asyncio.run(worker(Path(data_dir), int(officers), int(seed), mode == "faults"))


if __name__ == "__main__":
    main()
