"""Responder a la mesa de ayuda: the officer's answer on one of their tickets.

Opened by the "Responder" button on a help-desk message, or by "Corregir" on an
observation that asks for an explanation rather than a part of the form ("otro"): then
the answer is the correction and the ticket returns to "En atención".

Screenshots and documents may go with it, checked as a consulta's attachments: each is
kept until the text is typed (which sends everything) or «Enviar» sends the files alone.
"""

from __future__ import annotations

from typing import Any

from conversations.consultation import ATTACHMENT_KINDS, MAX_FILES
from conversations.events import Choice, Inbound, Kind, Outbound, rows
from conversations.flow import Again, Ctx, Done, Flow, Outcome, Stay, Step
from conversations.names import MENU_CHOICE, FlowName
from conversations.notices import typed_message

SEND = "send"


def _files(ctx: Ctx) -> list[dict[str, Any]]:
    """The files kept so far (stored in the answers only once there is one)."""
    files: list[dict[str, Any]] = ctx.data.get("files", [])
    return files


async def ask_text(ctx: Ctx) -> list[Outbound]:
    data = {"number": ctx.data["number"], "observed": ctx.data.get("observed", False)}
    return [Outbound("respuesta.pregunta", data, rows(Choice(MENU_CHOICE, "btn.menu")))]


def _add_file(ctx: Ctx, event: Inbound) -> Outcome:
    file = event.file
    assert file is not None
    files = _files(ctx)
    if file.refusal is not None:
        return Stay([Outbound(f"errors.attachment_{file.refusal}", {"name": file.name})])
    if file.kind not in ATTACHMENT_KINDS:
        return Stay([Outbound("errors.attachment_type", {"name": file.name})])
    if len(files) >= MAX_FILES:
        return Stay([Outbound("errors.too_many_files", {"max": MAX_FILES})])
    if all(f["sha256"] != file.sha256 for f in files):
        files.append({"sha256": file.sha256, "kind": file.kind, "name": file.name})
        ctx.data["files"] = files
    send = rows(Choice(SEND, "btn.reply_send"), Choice(MENU_CHOICE, "btn.menu"))
    groups: list[str] = ctx.data.setdefault("groups", [])
    if file.group is not None:
        if file.group in groups:
            return Stay()
        groups.append(file.group)
    data = {"count": len(files), "max": MAX_FILES, "album": file.group is not None}
    return Stay([Outbound("respuesta.archivo", data, send)])


async def _send(ctx: Ctx, text: str) -> Outcome:
    number = ctx.data["number"]
    files = _files(ctx)
    resumed = await ctx.services.officer_reply(number, text, files)
    if resumed is None:  # the ticket closed meanwhile
        return Done([Outbound("respuesta.no_disponible", {"number": number})])
    data = {"number": number, "resumed": resumed, "file_count": len(files)}
    return Done([Outbound("respuesta.enviada", data)])


async def answer_text(ctx: Ctx, event: Inbound) -> Outcome:
    if event.kind is Kind.FILE and event.file is not None:
        return _add_file(ctx, event)
    if event.kind is Kind.BUTTON and event.text == SEND and _files(ctx):
        return await _send(ctx, "")
    text = typed_message(event)
    if isinstance(text, Again):
        return text
    return await _send(ctx, text)


FLOW = Flow(
    name=FlowName.REPLY,
    steps=(Step("texto", ask_text, answer_text, counted=False),),
    progress=False,
)
