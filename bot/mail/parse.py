"""Reading one inbound mail: who wrote, what it answers, what is new in it, what it asks.

Pure functions over bytes and text (no database, no network), so each rule is tested on
its own:

- :func:`parse` turns RFC 5322 bytes into :class:`ParsedMail` with the standard ``email``
  package: the sender, the threading headers, the plain text (HTML reduced to text when
  that is all there is), attachments, and whether a machine sent it (:func:`automatic`).
- :func:`new_text` keeps what the writer added: the quoted history that Outlook, Gmail,
  Zimbra and Thunderbird append ("El … escribió:", "De: … Enviado: …", "-----Mensaje
  original-----", ``>`` lines) and the signature (``-- ``, "Enviado desde mi …") go.
- :func:`parse_command` reads a first line such as ``#observado resolucion …`` with case and
  accents ignored.
"""

from __future__ import annotations

import html
import re
import unicodedata
from dataclasses import dataclass, field
from email import message_from_bytes, policy
from email.message import EmailMessage, Message
from email.utils import getaddresses, parseaddr
from html.parser import HTMLParser
from typing import Final

TICKET_TAG: Final = re.compile(r"\[?\b(PTE-\d{4}-\d{6})\b\]?", re.IGNORECASE)
_MSGID: Final = re.compile(r"<[^<>\s]+>")
MAX_ATTACHMENTS: Final = 10


@dataclass(frozen=True)
class MailFile:
    filename: str | None
    content: bytes


@dataclass(frozen=True)
class ParsedMail:
    message_id: str | None
    sender: str  # the From address, lower case ("" when there is none)
    recipients: frozenset[str]  # To and Cc, lower case
    subject: str
    in_reply_to: tuple[str, ...]  # In-Reply-To then References, newest first
    text: str  # the whole plain text
    files: list[MailFile] = field(default_factory=list)
    automatic: str | None = None  # "bounce" | "auto_reply" | None (a person wrote it)
    # The receiving server said the From domain failed DMARC (or SPF with no DKIM pass).
    unauthenticated: bool = False

    @property
    def ticket_tag(self) -> str | None:
        found = TICKET_TAG.search(self.subject)
        return found.group(1).upper() if found else None


def parse(raw: bytes) -> ParsedMail:
    message = message_from_bytes(raw, policy=policy.default)
    assert isinstance(message, EmailMessage)
    sender = parseaddr(str(message.get("From", "")))[1].strip().lower()
    recipients = frozenset(
        address.strip().lower()
        for _name, address in getaddresses(
            [str(v) for name in ("To", "Cc") for v in message.get_all(name, [])]
        )
        if address
    )
    references = _MSGID.findall(str(message.get("References", "")))
    replied = _MSGID.findall(str(message.get("In-Reply-To", "")))
    threading = tuple(dict.fromkeys([*replied, *reversed(references)]))
    message_id = _MSGID.search(str(message.get("Message-ID", "")))
    text, files = _body(message)
    return ParsedMail(
        message_id=message_id.group(0) if message_id else None,
        sender=sender,
        recipients=recipients,
        subject=" ".join(str(message.get("Subject", "")).split()),
        in_reply_to=threading,
        text=text,
        files=files,
        automatic=automatic(message, sender),
        unauthenticated=failed_authentication(message),
    )


_AUTO_PRECEDENCE: Final = frozenset({"bulk", "auto_reply", "junk", "list"})
_DAEMONS: Final = ("mailer-daemon@", "postmaster@")


def automatic(message: Message, sender: str) -> str | None:
    """ "bounce" for a delivery report, "auto_reply" for any other mail a machine wrote
    (out-of-office, a ticketing system's acknowledgement, a list), None for a person's."""
    content_type = message.get_content_type()
    report = str(message.get_param("report-type", "", header="content-type") or "").lower()
    if content_type == "multipart/report" and report in ("delivery-status", ""):
        return "bounce"
    if sender.startswith(_DAEMONS) or str(message.get("Return-Path", "")).strip() == "<>":
        return "bounce"
    if message.get("X-Failed-Recipients"):
        return "bounce"
    auto = str(message.get("Auto-Submitted", "")).strip().lower()
    if auto and auto != "no":
        return "auto_reply"
    if any(message.get(name) for name in ("X-Autoreply", "X-Autorespond", "X-Autoresponse")):
        return "auto_reply"
    if str(message.get("Precedence", "")).strip().lower() in _AUTO_PRECEDENCE:
        return "auto_reply"
    if str(message.get("X-Auto-Response-Suppress", "")).strip().lower() in ("all", "oof"):
        return "auto_reply"  # what Exchange sets on its own automatic replies
    if message.get("List-Id") or message.get("List-Unsubscribe"):
        return "auto_reply"
    return None


def failed_authentication(message: Message) -> bool:
    """What the receiving server wrote in Authentication-Results (RFC 8601): a From that
    fails DMARC, or fails SPF without a passing DKIM signature, may be forged. A server that
    writes no such header tells nothing, and nothing is concluded."""
    results = " ".join(str(v) for v in message.get_all("Authentication-Results", [])).lower()
    if not results:
        return False
    if re.search(r"\bdmarc=fail\b", results):
        return True
    return bool(re.search(r"\bspf=fail\b", results)) and not re.search(r"\bdkim=pass\b", results)


def _body(message: EmailMessage) -> tuple[str, list[MailFile]]:
    plain: str | None = None
    markup: str | None = None
    files: list[MailFile] = []
    for part in message.walk():
        if part.is_multipart():
            continue
        disposition = part.get_content_disposition()
        filename = part.get_filename()
        kind = part.get_content_type()
        if disposition == "attachment" or (filename and kind not in ("text/plain", "text/html")):
            if len(files) < MAX_ATTACHMENTS + 1:  # one more than allowed: the caller says so
                payload = part.get_payload(decode=True)
                files.append(MailFile(filename, payload if isinstance(payload, bytes) else b""))
            continue
        if kind == "text/plain" and plain is None:
            plain = _decoded(part)
        elif kind == "text/html" and markup is None:
            markup = _decoded(part)
    if plain is None and markup is not None:
        plain = html_to_text(markup)
    return (plain or "").replace("\r\n", "\n"), files


def _decoded(part: Message) -> str:
    payload = part.get_payload(decode=True)
    if not isinstance(payload, bytes):
        return ""
    charset = part.get_content_charset() or "utf-8"
    try:
        return payload.decode(charset, errors="replace")
    except LookupError:
        return payload.decode("utf-8", errors="replace")


class _TextOf(HTMLParser):
    _BREAKS: Final = frozenset({"br", "p", "div", "tr", "li", "blockquote", "h1", "h2", "h3"})

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self.skip = 0
        self.quote = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in ("style", "script", "head"):
            self.skip += 1
        if tag in self._BREAKS:
            self.parts.append("\n")
        if tag == "blockquote":  # quoted history: marked as a mail client quotes it
            self.quote += 1

    def handle_endtag(self, tag: str) -> None:
        if tag in ("style", "script", "head"):
            self.skip = max(0, self.skip - 1)
        if tag == "blockquote":
            self.quote = max(0, self.quote - 1)
        if tag in self._BREAKS:
            self.parts.append("\n")

    def handle_data(self, data: str) -> None:
        if self.skip:
            return
        text = " ".join(data.split())
        if text:
            self.parts.append(("> " if self.quote else "") + text + " ")


def html_to_text(markup: str) -> str:
    reader = _TextOf()
    reader.feed(markup)
    reader.close()
    lines = [line.strip() for line in "".join(reader.parts).split("\n")]
    return html.unescape(re.sub(r"\n{3,}", "\n\n", "\n".join(lines))).strip()


# ------------------------------------------------------------- the new text
_QUOTE_HEADERS: Final = [
    # Gmail, Apple Mail, Thunderbird: "El lun, 5 ene 2026 a las 10:00, Ana <…> escribió:"
    re.compile(r"^(el|on)\b.{0,300}\b(escribi[oó]|wrote)\s*:\s*$", re.IGNORECASE | re.DOTALL),
    re.compile(r"^-{2,}\s*(mensaje original|original message|mensaje reenviado)\s*-{2,}", re.I),
    re.compile(r"^_{10,}\s*$"),  # Outlook's rule above the quoted headers
]
# Outlook and Zimbra quote the headers of the mail answered: "De: …" then, within a few
# lines, "Enviado: …" / "Fecha: …" / "Enviados: …" / "Para: …".
_HEADER_FROM: Final = re.compile(r"^\*?(de|from)\s*:\*?\s+\S", re.IGNORECASE)
_HEADER_NEXT: Final = re.compile(
    r"^\*?(enviado|enviados|enviado el|fecha|sent|date|para|to|asunto|subject)\s*:", re.I
)
_SIGNATURE: Final = [
    re.compile(r"^--\s*$"),
    re.compile(r"^(enviado|obtener outlook|sent) (desde|from|para) ", re.IGNORECASE),
]


def new_text(text: str) -> str:
    """What the writer added above the quoted history, without the signature."""
    lines = text.replace("\r\n", "\n").split("\n")
    kept: list[str] = []
    for index, line in enumerate(lines):
        stripped = line.strip()
        if stripped.startswith(">"):
            break
        if any(pattern.match(stripped) for pattern in _SIGNATURE):
            break
        if _quote_starts(lines, index):
            break
        kept.append(line.rstrip())
    return "\n".join(kept).strip()


def _quote_starts(lines: list[str], index: int) -> bool:
    stripped = lines[index].strip()
    # "El … escribió:" is often wrapped over two or three lines by the client; it carries a
    # date, so a sentence of the writer's own that ends in "escribió:" is not taken for it.
    for span in (1, 2, 3):
        joined = " ".join(line.strip() for line in lines[index : index + span])
        if _QUOTE_HEADERS[0].match(joined) and re.search(r"\d", joined):
            return True
    if any(pattern.match(stripped) for pattern in _QUOTE_HEADERS[1:]):
        return True
    if _HEADER_FROM.match(stripped):
        following = [line.strip() for line in lines[index + 1 : index + 5]]
        return any(_HEADER_NEXT.match(line) for line in following)
    return False


# ------------------------------------------------------------------ commands
COMMANDS: Final = ("en-atencion", "observado", "atendido", "cerrado")
_WORD: Final = re.compile(r"^#\s*([a-z][a-z\-_ ]*?)(?=$|\s|:)", re.IGNORECASE)


def fold(text: str) -> str:
    """Lower case without accents: "#En-Atención" → "#en-atencion"."""
    decomposed = unicodedata.normalize("NFKD", text)
    return "".join(ch for ch in decomposed if not unicodedata.combining(ch)).lower()


@dataclass(frozen=True)
class Command:
    name: str  # one of COMMANDS, or "" when the first line looks like a mistyped command
    typed: str  # what the writer typed as the command word (for the answer)
    part: str | None  # #observado: the part named (checked later against the ticket)
    text: str  # the rest: the observation, the closing message


def parse_command(body: str) -> Command | None:
    """The command on the first non-empty line, if the line starts with ``#`` and a letter."""
    lines = body.strip().split("\n")
    if not lines or not lines[0].strip().startswith("#"):
        return None
    first = lines[0].strip()
    rest_lines = "\n".join(lines[1:]).strip()
    folded = fold(first)
    if not re.match(r"^#\s*[a-z]", folded):
        return None  # "#123456 es el número": not a command
    words = folded[1:].replace(":", " ").split()
    original = first[1:].replace(":", " ").split()
    name, used = _command_name(words)
    typed = " ".join(original[: max(used, 1)])
    if not name:
        return Command("", typed, None, body.strip())
    remainder = original[used:]
    part = None
    if name == "observado":
        part = fold(remainder[0]) if remainder else None
        remainder = remainder[1:]
    text = "\n".join(t for t in (" ".join(remainder), rest_lines) if t).strip()
    return Command(name, typed, part, text)


def _command_name(words: list[str]) -> tuple[str, int]:
    """The command the first words name, and how many words it took."""
    if not words:
        return "", 0
    first = words[0].replace("_", "-")
    if first in ("en-atencion", "enatencion"):
        return "en-atencion", 1
    if first == "en" and len(words) > 1 and words[1] == "atencion":
        return "en-atencion", 2
    if first in ("observado", "atendido", "cerrado"):
        return first, 1
    return "", 1


def desk_number(pattern: re.Pattern[str], subject: str, text: str) -> str | None:
    """The desk's own ticket number in its acknowledgement (subject first, then the text)."""
    for where in (subject, text[:4000]):
        found = pattern.search(where)
        if found:
            return found.group(1)
    return None
