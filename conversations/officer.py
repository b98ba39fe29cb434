"""The officer's own contact steps, shared by the access request and the consulta: the
institutional email proved with a 6-digit code, and the mobile. Both are kept under
``resp`` (``email``, ``review``, ``verified``, ``phone``).

An address this person already proved (a code confirmed earlier, in any flow) needs no new
code: the email step goes straight on to the mobile.

Services used: ``email_proved(email)``, ``send_code(email)``, ``check_code(email, code)``,
``local_outbox``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from conversations import validators
from conversations.events import Choice, Inbound, Kind, Outbound, rows
from conversations.flow import Again, Ctx, Next, Outcome, Step
from conversations.steps import Refuse, Route, ask, get, kept

EMAIL, CODE, PHONE = "correo", "codigo", "celular"


def text_at(ctx: Ctx, *path: str) -> str | None:
    """The non-empty text at ``path`` of the answers, or None."""
    value = get(ctx, *path)
    return value if isinstance(value, str) and value else None


def proved_email(ctx: Ctx) -> str | None:
    return text_at(ctx, "resp", "email") if get(ctx, "resp", "verified") else None


def phone(ctx: Ctx) -> str | None:
    return text_at(ctx, "resp", "phone")


async def prove_email(ctx: Ctx, proved: Callable[[Ctx], Outcome]) -> Outcome:
    """The address in ``resp`` proved: by a code this person confirmed earlier, in any flow
    (then ``proved(ctx)``: no new code), else by the code sent now (or, if one went out a
    moment ago, by that one once the person is told how long to wait)."""
    resp = ctx.data["resp"]
    resp["verified"] = bool(await ctx.services.email_proved(resp["email"]))
    if resp["verified"]:
        return proved(ctx)
    sent = await ctx.services.send_code(resp["email"])
    if sent.wait_seconds:
        return Next(CODE, [Outbound("errors.code_wait", {"seconds": sent.wait_seconds})])
    return Next(CODE)


def _to_phone(_ctx: Ctx) -> Outcome:
    return Next(PHONE)


def contact_steps(
    route: Route,
    *,
    email_done: Callable[[Ctx], Outcome] = _to_phone,
    refuse_phone: Refuse | None = None,
) -> tuple[Step, ...]:
    """The steps ``correo``, ``codigo`` and ``celular``, in this order. ``route(ctx, step)``
    says where an answered code or mobile leads (as in
    :func:`conversations.steps.field_step`); ``email_done(ctx)``, where an email that needs
    no code leads (kept, or proved before); ``refuse_phone`` may turn down a valid mobile
    that clashes with the rest of the form."""

    async def answer_email(ctx: Ctx, event: Inbound) -> Outcome:
        if kept(ctx, event, proved_email):
            return email_done(ctx)
        if event.kind is not Kind.TEXT:
            return Again("errors.expected_text")
        result = validators.email(event.text)
        if isinstance(result, validators.Invalid):
            return Again(f"errors.{result.code}")
        resp = ctx.data.setdefault("resp", {})
        if resp.get("email") == result.value.address and resp.get("verified"):
            return email_done(ctx)  # the address proved, kept: no new code
        resp.update(email=result.value.address, review=result.value.review_domain)
        resp.pop("code_spent", None)
        return await prove_email(ctx, email_done)

    async def ask_code(ctx: Ctx) -> list[Outbound]:
        data = {
            "email": get(ctx, "resp", "email"),
            "local_outbox": ctx.services.local_outbox,
            # After the last try or once it expired, that code is no use: ask for a new one.
            "spent": get(ctx, "resp", "code_spent") or None,
        }
        buttons = rows(Choice("resend", "btn.resend_code"), Choice("change", "btn.change_email"))
        return [Outbound("solicitud.codigo", data, buttons, ctx.progress)]

    async def answer_code(ctx: Ctx, event: Inbound) -> Outcome:
        email = get(ctx, "resp", "email")
        if event.kind is Kind.BUTTON and event.text == "change":
            return Next(EMAIL)
        if event.kind is Kind.BUTTON and event.text == "resend":
            sent = await ctx.services.send_code(email)
            if sent.wait_seconds:
                return Again("errors.code_wait", {"seconds": sent.wait_seconds})
            ctx.data["resp"].pop("code_spent", None)
            return Again("solicitud.code_resent", {"email": email})
        if event.kind is not Kind.TEXT:
            return Again("errors.expected_text")
        typed = validators.verification_code(event.text)
        if isinstance(typed, validators.Invalid):
            return Again(f"errors.{typed.code}")
        status, left = await ctx.services.check_code(email, typed.value)
        if status in ("locked", "expired"):
            ctx.data["resp"]["code_spent"] = status
        if status != "ok":
            return Again(f"errors.code_{status}", {"left": left})
        ctx.data["resp"].pop("code_spent", None)
        ctx.data["resp"]["verified"] = True
        return route(ctx, CODE)

    async def ask_phone(ctx: Ctx) -> list[Outbound]:
        """The mobile, with "Compartir mi número"; not right after a shared number was
        refused (one from abroad): sharing it again would not help, so it is typed."""
        event = ctx.event
        share = event is None or event.kind is not Kind.CONTACT or not event.phone
        return await ask(
            "solicitud.celular",
            lambda _ctx: {"share": share},
            request_contact=share,
            current=phone,
        )(ctx)

    async def answer_phone(ctx: Ctx, event: Inbound) -> Outcome:
        if kept(ctx, event, phone):
            return route(ctx, PHONE)
        if event.kind is Kind.CONTACT and event.phone:
            text = event.phone
        elif event.kind is Kind.TEXT:
            text = event.text
        else:
            return Again("errors.expected_phone")
        result = validators.mobile(text)
        if isinstance(result, validators.Invalid) and event.kind is Kind.CONTACT:
            return Again("errors.shared_phone_not_peru", {"phone": text})
        if isinstance(result, validators.Invalid):
            return Again(f"errors.{result.code}")
        if refuse_phone is not None:
            refused = await refuse_phone(ctx, result.value)
            if refused is not None:
                return refused
        ctx.data.setdefault("resp", {})["phone"] = result.value
        return route(ctx, PHONE)

    return (
        Step(EMAIL, ask("solicitud.correo", current=proved_email), answer_email),
        Step(CODE, ask_code, answer_code),
        Step(PHONE, ask_phone, answer_phone),
    )


def contact_of(resp: dict[str, Any]) -> dict[str, Any]:
    """What a person's earlier ``resp`` says of them, to reuse after "¿Sigues siendo …?"."""
    fields = ("nombres", "apellidos", "dni", "cargo", "email", "review", "phone")
    return {field: resp[field] for field in fields if field in resp}
