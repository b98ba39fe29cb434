"""Ayuda: what the assistant does, its commands, and how to reach the help desk."""

from __future__ import annotations

from conversations.events import Outbound
from conversations.flow import Ctx, Flow, Step


async def ask_help(ctx: Ctx) -> list[Outbound]:
    return [Outbound("ayuda.main", {"flows": sorted(ctx.flows)})]


FLOW = Flow(
    name="ayuda",
    steps=(Step("ayuda", ask_help, counted=False),),
    menu_label="menu.ayuda",
    command="ayuda",
    needs_consent=False,
    progress=False,
)
