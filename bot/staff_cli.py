"""`pte-bot staff ...`: help-desk work from the shell, on the same database as the bot.

list                      the queue: open tickets, overdue first, then by due date
show NUMBER               one ticket with its history
set-state NUMBER STATE    a validated transition, recorded and notified to the officer
export-csv FILE           every ticket, Spanish column names
backup FILE               SQLite online backup, safe while the bot runs
"""

from __future__ import annotations

import argparse
import csv
import json
import sqlite3
from datetime import date
from pathlib import Path
from typing import Any, TextIO

from bot import dates
from bot.app import App
from bot.desk import card
from bot.workflow import PARTS, STATES, change_state

OPEN = ("Registrado", "En atención", "Observado")


def add_parser(commands: Any) -> None:
    staff = commands.add_parser("staff", help="help-desk work from the shell")
    actions = staff.add_subparsers(dest="action", required=True)
    actions.add_parser("list", help="the queue, overdue first")
    show = actions.add_parser("show", help="one ticket and its history")
    show.add_argument("number")
    change = actions.add_parser("set-state", help="change a ticket's state")
    change.add_argument("number")
    change.add_argument("state", choices=STATES)
    change.add_argument("--message", default=None, help="message for the officer")
    change.add_argument(
        "--part", choices=PARTS, default="otro", help="what to correct (with Observado)"
    )
    change.add_argument("--by", default="shell", help="who makes the change")
    export = actions.add_parser("export-csv", help="every ticket as CSV")
    export.add_argument("file", type=Path)
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
        async with app.store.transaction(app.clock.now()) as tx:
            found = await card(app, tx, args.number, None)
        if found is None:
            out.write(texts.plain("staff.not_found", {"number": args.number}) + "\n")
            return
        out.write(texts.plain("mesa.ficha", found) + "\n")
    elif args.action == "set-state":
        async with app.store.transaction(app.clock.now()) as tx:
            changed = await change_state(
                app, tx, args.number, args.state, f"staff:shell:{args.by}", args.message,
                part=getattr(args, "part", None),
            )  # fmt: skip
        out.write(texts.plain("staff.changed", vars(changed)) + "\n")
    elif args.action == "export-csv":
        headers = texts.data["staff_csv"]
        async with app.store.reading() as conn:
            rows = list(
                await conn.execute_fetchall(
                    "SELECT t.number, t.type, t.state, e.ruc, t.entity_name, t.registered_at,"
                    " t.due_on, t.flags, t.data FROM tickets t"
                    " LEFT JOIN entities e ON e.id = t.entity_id ORDER BY t.id"
                )
            )
        with args.file.open("w", newline="", encoding="utf-8-sig") as handle:
            writer = csv.writer(handle)
            writer.writerow(headers)
            for number, kind, state, ruc, name, registered, due, flags, data in rows:
                resp = json.loads(data).get("resp", {})
                writer.writerow(
                    [number, kind, state, ruc, name, registered, due,
                     f"{resp.get('nombres', '')} {resp.get('apellidos', '')}".strip(),
                     ", ".join(json.loads(flags))]
                )  # fmt: skip
        out.write(texts.plain("staff.exported", {"count": len(rows), "file": str(args.file)}))
        out.write("\n")
    elif args.action == "backup":
        target = sqlite3.connect(args.file)
        try:
            async with app.store.reading() as conn:
                await conn.backup(target)
        finally:
            target.close()
        out.write(texts.plain("staff.backup", {"file": str(args.file)}) + "\n")
