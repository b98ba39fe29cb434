"""Building blocks for question steps: a typed answer checked by a validator, buttons.

``field_step`` makes the most common step: ask with a template, check the typed answer
with a validator from :mod:`conversations.validators`, say what was wrong (the validator's
code is the message key ``errors.<code>``) or store the value and move on.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from conversations import validators
from conversations.events import Choice, Inbound, Kind, Outbound, rows
from conversations.flow import Again, AskFn, Ctx, Next, Outcome, Step

Validate = Callable[[str, Ctx], validators.Valid[Any] | validators.Invalid]
Save = Callable[[Ctx, Any], None]
Route = Callable[[Ctx, str], Outcome]
# A check of a valid answer against the rest of the form (e.g. a DNI already given to
# someone else): the outcome that refuses it, or None to take it.
Refuse = Callable[[Ctx, Any], Awaitable[Outcome | None]]


KEEP = "keep"
Current = Callable[[Ctx], str | None]


def ask(
    key: str,
    data: Callable[[Ctx], Mapping[str, Any]] | None = None,
    choices: Callable[[Ctx], list[Choice]] | None = None,
    request_contact: bool = False,
    current: Current | None = None,
) -> AskFn:
    """A question; with ``current``, the answer already given is shown with "Mantener"."""

    async def run(ctx: Ctx) -> list[Outbound]:
        values = dict(data(ctx)) if data else {}
        buttons = list(choices(ctx)) if choices else []
        shown = current(ctx) if current else None
        if shown:
            buttons.insert(0, Choice(KEEP, "btn.keep"))
        return [
            Outbound(
                key,
                values,
                rows(*buttons),
                ctx.progress,
                request_contact=request_contact,
                current=shown,
            )
        ]

    return run


def kept(ctx: Ctx, event: Inbound, current: Current | None) -> bool:
    """ "Mantener" tapped (or typed) while an answer is there to keep."""
    return (
        current is not None
        and event.kind is Kind.BUTTON
        and event.text == KEEP
        and bool(current(ctx))
    )


def field_step(
    name: str,
    key: str,
    validate: Validate,
    save: Save,
    route: Route,
    *,
    data: Callable[[Ctx], Mapping[str, Any]] | None = None,
    choices: Callable[[Ctx], list[Choice]] | None = None,
    on_choice: Callable[[Ctx, str], Outcome] | None = None,
    counted: bool = True,
    current: Current | None = None,
    refuse: Refuse | None = None,
) -> Step:
    """A question answered by typing; buttons (if any) are handled by ``on_choice``. The
    answer already stored (``current``, by default what ``save`` wrote when it is a
    :class:`put`) is shown with "Mantener", which keeps it and moves on. ``refuse`` may
    turn down a valid answer that clashes with the rest of the form; nothing is stored."""
    if current is None and isinstance(save, put):
        current = save.current

    async def answer(ctx: Ctx, event: Inbound) -> Outcome:
        if kept(ctx, event, current):
            return route(ctx, name)
        if event.kind is Kind.BUTTON and on_choice is not None:
            return on_choice(ctx, event.text)
        if event.kind is not Kind.TEXT:
            return Again("errors.expected_text")
        result = validate(event.text, ctx)
        if isinstance(result, validators.Invalid):
            return Again(f"errors.{result.code}")
        if refuse is not None:
            refused = await refuse(ctx, result.value)
            if refused is not None:
                return refused
        save(ctx, result.value)
        return route(ctx, name)

    return Step(name, ask(key, data, choices, current=current), answer, counted=counted)


class put:
    """Store a value at ``data[path[0]][path[1]]...``."""

    def __init__(self, *path: str) -> None:
        self.path = path

    def __call__(self, ctx: Ctx, value: Any) -> None:
        target = ctx.data
        for part in self.path[:-1]:
            target = target.setdefault(part, {})
        target[self.path[-1]] = value

    def current(self, ctx: Ctx) -> str | None:
        value = get(ctx, *self.path)
        return value if isinstance(value, str) and value else None


def get(ctx: Ctx, *path: str) -> Any:
    target: Any = ctx.data
    for part in path:
        if not isinstance(target, dict) or part not in target:
            return None
        target = target[part]
    return target


def plain(validate: Callable[[str], validators.Valid[Any] | validators.Invalid]) -> Validate:
    return lambda text, _ctx: validate(text)


def choose(*labels: tuple[str, str]) -> Callable[[Ctx], list[Choice]]:
    return lambda _ctx: [Choice(choice_id, label) for choice_id, label in labels]


def go(step: str | None = None, *messages: Outbound) -> Next:
    return Next(step=step, messages=messages)
