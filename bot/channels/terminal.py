"""The terminal chat (``pte-bot chat``): the same flows on a local SQLite file, no network.

Options are numbered; typing the number or the label chooses. ``/adjuntar RUTA`` sends a
file. Lines piped on standard input are read one message each and the program exits 0 at the
end of input, so a conversation can be scripted.
"""

from __future__ import annotations

import asyncio
import uuid
from pathlib import Path
from typing import TextIO

from bot.app import App
from bot.delivery.outbox import OutboxWorker
from bot.delivery.payload import Button, render
from bot.store.database import OutboxRow
from bot.texts import Capabilities
from conversations.events import FileInfo, Inbound, Kind

CHANNEL = "terminal"
ATTACH = "/adjuntar"
# Nothing typed can be taken back, nothing edited, no contact to share, no message to answer.
CAPABILITIES = Capabilities()


class TerminalTransport:
    def __init__(self, app: App, out: TextIO) -> None:
        self.app = app
        self.texts = app.texts
        self.out = out
        self.buttons: list[Button] = []

    async def deliver(self, row: OutboxRow) -> str | None:
        rendered = render(self.texts, row.payload, CAPABILITIES)
        if rendered.delete_ref is not None:
            return None  # a terminal cannot take back what was typed
        lines = [rendered.plain]
        buttons = [button for line in rendered.buttons for button in line]
        if buttons:
            self.buttons = buttons
            lines.append("   ".join(f"[{i}] {b.label}" for i, b in enumerate(buttons, 1)))
        if rendered.document:
            doc = rendered.document
            path = self.app.files.path_for(doc["sha256"])
            lines.append(
                self.texts.plain("terminal.document", {"name": doc["filename"], "path": str(path)})
            )
        self.out.write("\n".join(lines) + "\n\n")
        self.out.flush()
        return None


def parse_line(line: str, chat_id: str, event_id: str, buttons: list[Button]) -> Inbound | None:
    text = line.strip()
    if not text:
        return None
    # local: the person sits at this machine, so its paths mean something to them.
    if text.isdigit() and 1 <= int(text) <= len(buttons):
        data = buttons[int(text) - 1].data
        return Inbound(CHANNEL, chat_id, event_id, Kind.BUTTON, data, local=True)
    if text.split()[0].lower() == ATTACH:
        path = Path(text[len(ATTACH) :].strip()).expanduser()
        size = path.stat().st_size if path.is_file() else None
        info = FileInfo(file_id=str(path.resolve()), name=path.name, size=size)
        return Inbound(CHANNEL, chat_id, event_id, Kind.FILE, file=info, local=True)
    if text.startswith("/"):
        command, _, args = text[1:].partition(" ")
        name = command.lower()
        return Inbound(CHANNEL, chat_id, event_id, Kind.COMMAND, name, args.strip(), local=True)
    return Inbound(CHANNEL, chat_id, event_id, Kind.TEXT, text, local=True)


async def run_chat(app: App, stdin: TextIO, stdout: TextIO, chat_id: str = "local") -> None:
    transport = TerminalTransport(app, stdout)

    async def fetch(path: str) -> bytes:
        return await asyncio.to_thread(Path(path).read_bytes)

    worker = OutboxWorker(app.store, CHANNEL, transport, app.clock, only_chat=chat_id)
    await worker.start()
    await worker.drain()
    interactive = stdin.isatty()
    session = uuid.uuid4().hex[:12]
    count = 0
    try:
        while True:
            if interactive:
                stdout.write("> ")
                stdout.flush()
            line = await asyncio.to_thread(stdin.readline)
            if not line:
                break
            if not interactive and line.strip():
                stdout.write(f"» {line.strip()}\n")
            count += 1
            # What another process wrote for this user meanwhile (the help desk, in another
            # terminal or the shell) is shown before the answer to this line.
            await worker.pick_up()
            event = parse_line(line, chat_id, f"{session}-{count}", transport.buttons)
            if event is None:
                continue
            if event.file is not None and event.file.size is None:
                stdout.write(
                    app.texts.plain("terminal.no_such_file", {"path": event.file.file_id})
                )
                stdout.write("\n\n")
                continue
            worker.submit(await app.process(event, fetch))
            await worker.drain()
            await app.mail.send_due()
    finally:
        await worker.drain()
        await worker.stop()
