"""`pte-bot staff ...`: help-desk work from the shell, on the same database as the bot.

list                      the queue: open tickets, overdue first, then by due date
show NUMBER               one ticket with its history (exit 1 and a line on stderr if none)
set-state NUMBER STATE    a validated transition, recorded and notified to the officer
                          (Atendido of a consulta needs --message: the answer)
export-csv FILE           every ticket, Spanish column names
backup FILE               SQLite online backup, safe while the bot runs
mail [--days N]           inbound mail of the last N days: applied, and left for review by why

A number is read as the chat reads it: ``pte-2026-3`` is ``PTE-2026-000003``. Times are Lima
time (``dd/mm/aaaa hh:mm``). Every CSV cell that a spreadsheet would run as a formula (it
starts with ``=``, ``+``, ``-``, ``@``, a tab or a carriage return) gets a leading ``'``
(OWASP's rule for CSV injection), and every cell is quoted.
"""

from __future__ import annotations

import argparse
import csv
import json
import sqlite3
from datetime import date, timedelta
from pathlib import Path
from typing import Any, TextIO

from bot import dates
from bot.app import App
from bot.desk.card import AnswerRequired, attend, card, staff_name
from bot.domain.workflow import (
    ATTENDED,
    IN_PROGRESS,
    OBSERVED,
    PARTS,
    REGISTERED,
    STATES,
    TicketState,
    change_state,
)
from bot.errors import PteBotError
from bot.modes import create_private, open_private
from bot.texts import state_code
from conversations.status import find_number

OPEN = (REGISTERED, IN_PROGRESS, OBSERVED)
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


class TicketNotFound(PteBotError):
    """``show`` of a number that does not exist; the message is the localized line."""


class AnswerMissing(PteBotError):
    """``set-state N Atendido`` of a consulta without ``--message`` (its answer)."""


def ticket_number(text: str) -> str:
    """The number as the chat normalises it, else the text as typed (for the error line)."""
    return find_number(text) or text.strip()


def parse_state(text: str) -> str:
    """A state as typed: its code (``en_atencion``) or its name (``"En atención"``)."""
    code = state_code(text)
    return TicketState(code) if code in STATES else text


def spreadsheet_safe(value: str) -> str:
    """A cell no spreadsheet runs as a formula: OWASP's leading quote on risky starts."""
    return f"'{value}" if value.startswith(FORMULA_STARTS) else value


def add_parser(commands: Any) -> None:
    staff = commands.add_parser("staff", help="help-desk work from the shell")
    actions = staff.add_subparsers(dest="action", required=True)
    actions.add_parser("list", help="the queue, overdue first")
    show = actions.add_parser("show", help="one ticket and its history")
    show.add_argument("number")
    change = actions.add_parser("set-state", help="change a ticket's state")
    change.add_argument("number")
    change.add_argument("state", type=parse_state, choices=STATES)
    change.add_argument(
        "--message", default=None, help="message for the officer (a consulta's answer)"
    )
    change.add_argument(
        "--part", choices=PARTS, default="otro", help="what to correct (with Observado)"
    )
    change.add_argument("--by", default="shell", help="who makes the change")
    export = actions.add_parser("export-csv", help="every ticket as CSV")
    export.add_argument("file", type=Path)
    mail = actions.add_parser("mail", help="inbound mail: what was applied, what awaits review")
    mail.add_argument("--days", type=int, default=7, help="how far back to count")
    backup = actions.add_parser("backup", help="online backup of the database")
    backup.add_argument("file", type=Path)


async def run(app: App, args: argparse.Namespace, out: TextIO) -> None:
    texts = app.texts
    if args.action == "list":
        today = dates.lima_date(app.clock.now())
        marks = ", ".join("?" for _ in OPEN)
        async with app.store.reading() as conn:
            rows = list(
                await conn.execute_fetchall(
                    "SELECT t.number, t.type, t.state, t.due_on, t.entity_name FROM tickets t"
                    f" LEFT JOIN entities e ON e.id = t.entity_id WHERE t.state IN ({marks})"
                    " ORDER BY t.due_on, t.id",
                    OPEN,
                )
            )
        items = []
        for number, kind, state, due_on, entity in rows:
            left = app.calendar.business_days_between(today, date.fromisoformat(due_on))
            items.append(
                {"number": number, "type": kind, "state": state, "due": due_on,
                 "left": left, "entity": entity or ""}
            )  # fmt: skip
        out.write(texts.plain("staff.queue", {"items": items}) + "\n")
    elif args.action == "show":
        number = ticket_number(args.number)
        async with app.store.transaction(app.clock.now()) as tx:
            found = await card(app, tx, number, None)
        if found is None:
            raise TicketNotFound(texts.plain("staff.not_found", {"number": number}))
        out.write(texts.plain("mesa.ficha", found) + "\n")
    elif args.action == "set-state":
        number, actor = ticket_number(args.number), f"staff:shell:{args.by}"
        to_state = parse_state(args.state)
        async with app.store.transaction(app.clock.now()) as tx:
            if to_state == ATTENDED:  # each type closes its own way (a consulta: its answer)
                try:
                    changed = await attend(app, tx, number, actor, args.message)
                except AnswerRequired:
                    line = texts.plain("staff.answer_required", {"number": number})
                    raise AnswerMissing(line) from None
            else:
                changed = await change_state(
                    app.calendar, tx, number, to_state, actor, args.message,
                    part=getattr(args, "part", None),
                )  # fmt: skip
        out.write(texts.plain("staff.changed", vars(changed)) + "\n")
    elif args.action == "export-csv":
        table = await export_rows(app)
        # 0600: the CSV holds the responsibles' emails and phones.
        with open_private(args.file, newline="", encoding="utf-8-sig") as handle:
            writer = csv.writer(handle, quoting=csv.QUOTE_ALL)
            writer.writerow(texts.data["staff_csv"])
            for row in table:
                writer.writerow([spreadsheet_safe(cell) for cell in row])
        out.write(texts.plain("staff.exported", {"count": len(table), "file": str(args.file)}))
        out.write("\n")
    elif args.action == "mail":
        since = dates.lima_date(app.clock.now()) - timedelta(days=args.days)
        async with app.store.reading() as conn:
            counted = list(
                await conn.execute_fetchall(
                    "SELECT outcome, coalesce(reason, ''), count(*) FROM mail_inbox"
                    " WHERE processed_at >= ? GROUP BY 1, 2 ORDER BY 3 DESC, 1, 2",
                    (since.isoformat(),),
                )
            )
        summary = [{"outcome": o, "reason": r, "count": n} for o, r, n in counted]
        data = {"mail_counts": summary, "days": args.days}
        out.write(texts.plain("correo.resumen", data) + "\n")
    elif args.action == "backup":
        create_private(args.file)  # 0600 before SQLite writes a byte of it
        target = sqlite3.connect(args.file)
        try:
            async with app.store.reading() as conn:
                await conn.backup(target)
        finally:
            target.close()
        out.write(texts.plain("staff.backup", {"file": str(args.file)}) + "\n")


async def export_rows(app: App) -> list[list[str]]:
    """One row per ticket, in the order of ``staff_csv`` in datos.toml."""
    async with app.store.reading() as conn:
        rows = list(
            await conn.execute_fetchall(
                "SELECT t.number, t.type, t.state, e.ruc, t.entity_name, t.registered_at,"
                " t.due_on, t.flags, t.data, t.person_id, t.assignee_chat,"
                " (SELECT count(*) FROM ticket_events v WHERE v.ticket_id = t.id"
                "  AND v.kind = 'estado' AND v.to_state = 'observado'),"
                " (SELECT max(v.at) FROM ticket_events v WHERE v.ticket_id = t.id"
                "  AND v.to_state = 'cerrado'), t.desk_number"
                " FROM tickets t LEFT JOIN entities e ON e.id = t.entity_id ORDER BY t.id"
            )
        )
    requests = {row[0]: json.loads(row[8]) for row in rows}
    # Who filed a consulta or a profile change: the responsible named in that person's
    # latest access request (a profile change names it through its base ticket).
    by_person: dict[int, dict[str, Any]] = {}
    for row in rows:
        if requests[row[0]].get("resp"):
            by_person[row[9]] = requests[row[0]]["resp"]
    table = []
    for (number, kind, state, ruc, name, registered, due, flags, _data, person, assignee,
         observed, closed, desk_number) in rows:  # fmt: skip
        data = requests[number]
        base = requests.get(data.get("base", ""), {})
        resp = data.get("resp") or base.get("resp") or by_person.get(person) or {}
        shown = app.texts.label(f"estado.state_{state}", {})  # the name, not the code
        table.append(
            [number, kind, shown, ruc or "", name or "", dates.date_time(registered),
             dates.short_date(date.fromisoformat(due)),
             f"{resp.get('nombres', '')} {resp.get('apellidos', '')}".strip(),
             resp.get("email", ""), resp.get("phone", ""),
             staff_name(app, assignee) if assignee else "", str(observed),
             dates.date_time(closed) if closed else "", ", ".join(json.loads(flags)),
             desk_number or ""]
        )  # fmt: skip
    return table
