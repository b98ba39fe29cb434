"""Ayuda: what the assistant does, every command the person can use, and how to reach a
person at the help desk."""

from __future__ import annotations

from conversations.events import Outbound
from conversations.flow import Ctx, Flow, Step
from conversations.names import FlowName


def commands(ctx: Ctx) -> tuple[list[str], list[str]]:
    """The slash commands anyone may use (as the engine lists them for the channel's menu)
    and those only the help desk's staff have."""
    public: list[str] = []
    staff: list[str] = []
    for flow in ctx.flows.values():
        names = [name for name in (flow.command, *flow.commands) if name]
        (staff if flow.staff_only else public).extend(names)
    return ["start", "menu", *public, "atras", "cancelar"], staff


async def ask_help(ctx: Ctx) -> list[Outbound]:
    public, staff = commands(ctx)
    data = {"commands": public, "staff_commands": staff if ctx.person.is_staff else []}
    return [Outbound("ayuda.main", data)]


FLOW = Flow(
    name=FlowName.HELP,
    steps=(Step("ayuda", ask_help, counted=False),),
    menu_label="menu.ayuda",
    command="ayuda",
    needs_consent=False,
    progress=False,
)
