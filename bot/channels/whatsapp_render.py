"""A rendered outbox message as WhatsApp Cloud API messages, within WhatsApp's limits.

Telegram HTML becomes WhatsApp's markup (``*bold*``, ``_italic_``, ``~strike~``, code blocks
in triple backticks, a link as "text (url)"). Choices become reply buttons when there are at
most 3 and each fits 20 characters, whole or by its short form (a label's ``_corto``
template: "000002 · En atención", "Luis Quispe"); otherwise a list (at most 10 rows, titles of
at most 24: the label, or its short form, or at last the label cut at a word's end, with the
whole label in the row's description); more than 10 choices are paginated with a "Más
opciones" row that asks for the next page, which repeats the question. A text too long for
an interactive body (1024) or a text message (4096) is split into messages first.

Each message is returned as the body of a ``POST /{phone-number-id}/messages`` without its
``messaging_product``/``to``; a document names the stored file by its hash (``sha256``), which
the transport replaces with the media id of an upload.
"""

from __future__ import annotations

import html
import re
from dataclasses import dataclass
from typing import Any

from bot.delivery.payload import Rendered
from bot.texts import Texts

TEXT_LIMIT = 4096
BODY_LIMIT = 1024  # interactive body and media captions
BUTTONS_MAX = 3
BUTTON_TITLE_LIMIT = 20
ROWS_MAX = 10
ROW_TITLE_LIMIT = 24
ROW_DESCRIPTION_LIMIT = 72
LIST_BUTTON_LIMIT = 20
ROW_ID_LIMIT = 200

MORE_PREFIX = "wa:more:"  # "wa:more:<outbox row id>:<page>": the next page of a long list
SHARE_PHONE = "wa:phone"  # the officer's own number, which WhatsApp already tells us

Message = dict[str, Any]


@dataclass(frozen=True)
class Option:
    id: str
    title: str
    short: str | None = None  # the label's short form, if it has one

    def fitting(self, limit: int) -> str | None:
        """The label as it fits ``limit`` characters: whole, else its short form."""
        for form in (self.title, self.short):
            if form and len(form) <= limit:
                return form
        return None


_TAGS: list[tuple[re.Pattern[str], str]] = [
    (re.compile(r"<pre>(.*?)</pre>", re.S), "pre"),
    (re.compile(r"<b>(.*?)</b>", re.S), "*"),
    (re.compile(r"<i>(.*?)</i>", re.S), "_"),
    (re.compile(r"<s>(.*?)</s>", re.S), "~"),
]
_LINK = re.compile(r'<a href="([^"]*)">(.*?)</a>', re.S)
_QUOTE = re.compile(r"<blockquote>(.*?)</blockquote>", re.S)
_ANY_TAG = re.compile(r"</?[a-z-]+(?: [^>]*)?>")


def _wrap(marker: str, inner: str) -> str:
    # WhatsApp only formats "*x*" when the markers touch the text: keep spaces outside.
    stripped = inner.strip()
    if not stripped:
        return inner
    lead = inner[: len(inner) - len(inner.lstrip())]
    trail = inner[len(inner.rstrip()) :]
    return f"{lead}{marker}{stripped}{marker}{trail}"


def to_whatsapp(text: str) -> str:
    """Telegram HTML (our templates' subset) → WhatsApp formatting, entities decoded."""
    for pattern, marker in _TAGS:
        if marker == "pre":
            text = pattern.sub(lambda m: "```" + m.group(1) + "```", text)
        else:
            text = pattern.sub(lambda m, k=marker: _wrap(k, m.group(1)), text)  # type: ignore[misc]

    def link(match: re.Match[str]) -> str:
        url, label = html.unescape(match.group(1)), match.group(2)
        return label if html.unescape(label) == url else f"{label} ({url})"

    text = _LINK.sub(link, text)
    text = _QUOTE.sub(
        lambda m: "\n".join("> " + line for line in m.group(1).strip().split("\n")), text
    )
    return html.unescape(_ANY_TAG.sub("", text)).strip()


def shorten(text: str, limit: int) -> str:
    """``text`` within ``limit`` characters, cut at a word's end when one is not too far back
    ("María del Carmen Fernán…" rather than a stump), marked with "…"."""
    if len(text) <= limit:
        return text
    cut = text[: limit - 1]
    space = cut.rfind(" ")
    if text[limit - 1] != " " and space >= limit // 2:  # not already at a word's end
        cut = cut[:space]
    return cut.rstrip(" ·,;:-") + "…"


def split_text(text: str, limit: int = TEXT_LIMIT) -> list[str]:
    """Pieces of at most ``limit`` characters, cut at paragraph or line ends when possible."""
    pieces: list[str] = []
    while len(text) > limit:
        cut = text.rfind("\n\n", 0, limit)
        if cut <= 0:
            cut = text.rfind("\n", 0, limit)
        if cut <= 0:
            cut = text.rfind(" ", 0, limit)
        if cut <= 0:
            cut = limit
        pieces.append(text[:cut].rstrip())
        text = text[cut:].lstrip()
    if text:
        pieces.append(text)
    return pieces


def options_of(texts: Texts, rendered: Rendered) -> list[Option]:
    found = [Option(b.data, b.label, b.short) for row in rendered.buttons for b in row]
    if rendered.request_contact:
        found.append(Option(SHARE_PHONE, texts.label("whatsapp.share_phone", {})))
    return found


def pages_of(options: list[Option]) -> list[list[Option]]:
    """At most 10 rows a page: 9 choices and "Más opciones" until the rest fits in 10."""
    if len(options) <= ROWS_MAX:
        return [options]
    pages: list[list[Option]] = []
    rest = options
    while len(rest) > ROWS_MAX:
        pages.append(rest[: ROWS_MAX - 1])
        rest = rest[ROWS_MAX - 1 :]
    pages.append(rest)
    return pages


def text_message(body: str) -> Message:
    return {"type": "text", "text": {"body": body, "preview_url": False}}


def template_message(name: str, language: str) -> Message:
    return {"type": "template", "template": {"name": name, "language": {"code": language}}}


def _button_titles(options: list[Option]) -> list[str] | None:
    """Reply-button titles for ``options``, or None when they need a list (more than 3, one
    that fits no button even by its short form, or two that would read the same)."""
    if len(options) > BUTTONS_MAX:
        return None
    titles = [o.fitting(BUTTON_TITLE_LIMIT) for o in options]
    found = [t for t in titles if t is not None]
    if len(found) != len(options) or len(set(found)) != len(found):
        return None
    return found


def _interactive(texts: Texts, body: str, options: list[Option]) -> Message:
    titles = _button_titles(options)
    if titles is not None:
        buttons = [
            {"type": "reply", "reply": {"id": o.id, "title": title}}
            for o, title in zip(options, titles, strict=True)
        ]
        action: dict[str, Any] = {"buttons": buttons}
        kind = "button"
    else:
        rows = []
        for option in options:
            title = option.fitting(ROW_TITLE_LIMIT) or shorten(
                option.short or option.title, ROW_TITLE_LIMIT
            )
            row = {"id": option.id[:ROW_ID_LIMIT], "title": title}
            if title != option.title:  # the whole label stays readable
                row["description"] = shorten(option.title, ROW_DESCRIPTION_LIMIT)
            rows.append(row)
        label = shorten(texts.label("whatsapp.list_button", {}), LIST_BUTTON_LIMIT)
        action = {"button": label, "sections": [{"rows": rows}]}
        kind = "list"
    return {
        "type": "interactive",
        "interactive": {"type": kind, "body": {"text": body}, "action": action},
    }


def plan(texts: Texts, rendered: Rendered, row_id: int, page: int = 0) -> list[Message]:
    """The messages that show ``rendered`` on WhatsApp, in order (page > 0: a later page of
    its list only)."""
    text = to_whatsapp(rendered.html)
    options = options_of(texts, rendered)
    pages = pages_of(options) if options else []
    if page > 0:
        if page >= len(pages):
            return []
        return [
            _interactive(
                texts,
                _page_body(texts, text, page, len(pages)),
                _with_more(texts, pages, page, row_id),
            )
        ]
    messages: list[Message] = []
    if rendered.document is not None:
        doc = rendered.document
        caption = text if len(text) <= BODY_LIMIT else ""
        if not caption:
            messages += [text_message(piece) for piece in split_text(text)]
        document = {"sha256": doc["sha256"], "filename": doc["filename"], "mime": doc["mime"]}
        if caption:
            document["caption"] = caption
        messages.append({"type": "document", "document": document})
        text = ""
    if not pages:
        return messages + [text_message(piece) for piece in split_text(text)]
    if len(text) > BODY_LIMIT or not text:
        messages += [text_message(piece) for piece in split_text(text)]
        text = texts.plain("whatsapp.choose", {})
    messages.append(_interactive(texts, text, _with_more(texts, pages, 0, row_id)))
    return messages


def _page_body(texts: Texts, question: str, page: int, pages: int) -> str:
    """A later page of a list says which question its options answer: the question again
    (or its last paragraph, when the whole would not fit an interactive body)."""
    data: dict[str, Any] = {"page": page + 1, "pages": pages}
    for candidate in (question, question.rsplit("\n\n", 1)[-1], ""):
        body = to_whatsapp(texts.render("whatsapp.more_body", {**data, "question": candidate}))
        if len(body) <= BODY_LIMIT:
            return body
    return body


def _with_more(texts: Texts, pages: list[list[Option]], page: int, row_id: int) -> list[Option]:
    options = list(pages[page])
    if page + 1 < len(pages):
        more = texts.label("whatsapp.more_options", {})
        options.append(Option(f"{MORE_PREFIX}{row_id}:{page + 1}", more))
    return options
