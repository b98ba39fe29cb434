"""Outgoing mail: building the message and handing it to an SMTP server or to .eml files.

    MailError                 could not hand a message over
    ├── TransientMailError    try again later (4xx reply, connection refused/lost, time-out)
    └── PermanentMailError    will not go as it is (5xx reply, STARTTLS/AUTH unsupported,
                              server certificate rejected)

Exception messages are short codes ("smtp_550", "connection_failed"...). The server's reply
text is kept in ``reply`` but left out of the message and of the exception chain, because
servers echo addresses ("550 <ana@x.gob.pe>: unknown user") and errors end up in logs.
"""

from __future__ import annotations

import asyncio
import logging
import re
import secrets
import ssl
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from email.message import EmailMessage
from email.utils import format_datetime, getaddresses, make_msgid, parseaddr
from pathlib import Path
from typing import Final, Protocol

from bot.modes import private_dir, write_atomically

log = logging.getLogger(__name__)

_FALLBACK_MSGID_DOMAIN: Final = "asistente-pte.invalid"
_UNSAFE_FILENAME: Final = re.compile(r'[\x00-\x1f\x7f/\\"]')


class MailError(Exception):
    """A message could not be handed over. ``str()`` is a short code, never an address."""

    transient: bool = False

    def __init__(self, reason: str, *, code: int | None = None, reply: str | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.code = code
        self.reply = reply  # the server's text: may contain addresses, do not log at INFO


class TransientMailError(MailError):
    transient = True


class PermanentMailError(MailError):
    transient = False


@dataclass(frozen=True, slots=True)
class Attachment:
    filename: str
    content: bytes
    mime_type: str


def build_message(
    *,
    sender: str,
    to: list[str],
    cc: list[str],
    subject: str,
    text_body: str,
    attachments: list[Attachment],
    now: datetime | None = None,
    headers: Mapping[str, str] | None = None,
) -> EmailMessage:
    """A UTF-8 message with Message-ID and Date; attachments are carried byte for byte.

    Line breaks in ``subject`` are folded into spaces (entity names come from users); line
    breaks in addresses raise ``ValueError`` from the email package.
    """
    if not to:
        raise ValueError("a message needs at least one recipient in To")
    msg = EmailMessage()
    msg["From"] = sender
    msg["To"] = ", ".join(to)
    if cc:
        msg["Cc"] = ", ".join(cc)
    msg["Subject"] = " ".join(subject.split())
    msg["Date"] = format_datetime(now or datetime.now(UTC))
    # An explicit domain: make_msgid() would otherwise call socket.getfqdn(), a DNS lookup
    # that can stall for seconds and leaks the host's name.
    msg["Message-ID"] = make_msgid(domain=_msgid_domain(sender))
    for name, value in (headers or {}).items():  # In-Reply-To, References, Auto-Submitted
        msg[name] = " ".join(value.split())
    msg.set_content(text_body, charset="utf-8")
    for attachment in attachments:
        maintype, slash, subtype = attachment.mime_type.partition("/")
        if not (slash and maintype and subtype):
            raise ValueError("mime_type must look like type/subtype")
        msg.add_attachment(
            attachment.content,
            maintype=maintype,
            subtype=subtype,
            filename=_safe_filename(attachment.filename),
        )
    return msg


class Mailer(Protocol):
    async def send(self, msg: EmailMessage) -> str:
        """Hand ``msg`` over; return a delivery reference. Raises ``MailError``."""
        ...


class SmtpMailer:
    """Sends through an SMTP server with aiosmtplib, one connection per message.

    ``starttls=True`` requires STARTTLS (no silent downgrade); ``use_tls=True`` is implicit
    TLS (port 465). ``local_hostname`` is the EHLO name; without it aiosmtplib asks
    ``socket.getfqdn()`` (in a thread). The reference returned is the message's Message-ID.
    """

    def __init__(
        self,
        host: str,
        port: int,
        username: str | None,
        password: str | None,
        starttls: bool,
        timeout: float = 30,
        *,
        use_tls: bool = False,
        local_hostname: str | None = None,
    ) -> None:
        if starttls and use_tls:
            raise ValueError("starttls and use_tls are exclusive")
        self.host = host
        self.port = port
        self.username = username
        self._password = password
        self.starttls = starttls
        self.use_tls = use_tls
        self.timeout = timeout
        self.local_hostname = local_hostname

    def __repr__(self) -> str:  # no password in reprs, tracebacks or logs
        return f"SmtpMailer(host={self.host!r}, port={self.port!r})"

    async def send(self, msg: EmailMessage) -> str:
        recipients = envelope_recipients(msg)
        if not recipients:
            raise ValueError("the message has no recipients")
        sender = parseaddr(str(msg.get("From", "")))[1]
        reference = str(msg.get("Message-ID", ""))
        import aiosmtplib  # here, not at the top: only a configured server needs it (issue 18)

        try:
            # aiosmtplib removes Bcc headers from what it transmits.
            refused, response = await aiosmtplib.send(
                msg,
                sender=sender,
                recipients=recipients,
                hostname=self.host,
                port=self.port,
                username=self.username,
                password=self._password,
                start_tls=self.starttls,
                use_tls=self.use_tls,
                timeout=self.timeout,
                local_hostname=self.local_hostname,
            )
        except aiosmtplib.SMTPRecipientsRefused as exc:
            codes = [r.code for r in exc.recipients]
            error_type = (
                TransientMailError if any(400 <= c < 500 for c in codes) else PermanentMailError
            )
            replies = "; ".join(f"{r.code} {r.message}" for r in exc.recipients)
            raise error_type(
                "recipients_refused", code=max(codes, default=None), reply=replies
            ) from None
        except aiosmtplib.SMTPResponseException as exc:
            error_type = PermanentMailError if 500 <= exc.code < 600 else TransientMailError
            raise error_type(f"smtp_{exc.code}", code=exc.code, reply=exc.message) from None
        except (aiosmtplib.SMTPTimeoutError, TimeoutError) as exc:
            raise TransientMailError("timeout") from exc
        except OSError as exc:  # aiosmtplib's connect and disconnect errors are OSErrors
            if _is_certificate_error(exc):
                raise PermanentMailError("tls_certificate") from exc
            raise TransientMailError("connection_failed") from exc
        except aiosmtplib.SMTPException as exc:
            # What is left is the server lacking what we require: STARTTLS, AUTH, SMTPUTF8.
            raise PermanentMailError("not_supported") from exc
        if refused:
            # Accepted for the others: retrying would send them a duplicate.
            log.warning(
                "mail accepted with %d of %d recipients refused", len(refused), len(recipients)
            )
        log.debug("mail accepted: %s", response)
        return reference


class EmlMailer:
    """Writes each message to ``<outbox_dir>/<timestamp>-<short id>.eml`` (development, tests).

    The file appears complete or not at all: temporary name, fsync, rename, fsync the dir.
    """

    def __init__(self, outbox_dir: Path) -> None:
        self.outbox_dir = outbox_dir

    async def send(self, msg: EmailMessage) -> str:
        return await asyncio.to_thread(self._write, msg)

    def _write(self, msg: EmailMessage) -> str:
        from email import policy  # its header registry only when a message is written

        private_dir(self.outbox_dir)  # 0700; the file is 0600 (mkstemp)
        stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S%fZ")
        path = self.outbox_dir / f"{stamp}-{secrets.token_hex(4)}.eml"
        write_atomically(path, msg.as_bytes(policy=policy.SMTP))
        return str(path)


def envelope_recipients(msg: EmailMessage) -> list[str]:
    """To + Cc + Bcc addresses, in order, without duplicates (case-insensitive)."""
    headers: Sequence[str] = [
        str(value) for name in ("To", "Cc", "Bcc") for value in msg.get_all(name, [])
    ]
    seen: set[str] = set()
    result: list[str] = []
    for _, address in getaddresses(headers):
        if address and address.lower() not in seen:
            seen.add(address.lower())
            result.append(address)
    return result


def _is_certificate_error(exc: BaseException) -> bool:
    cause: BaseException | None = exc
    while cause is not None:
        if isinstance(cause, ssl.SSLCertVerificationError):
            return True
        cause = cause.__cause__
    return False


def _msgid_domain(sender: str) -> str:
    domain = parseaddr(sender)[1].rpartition("@")[2].strip().rstrip(".")
    try:
        ascii_domain = domain.encode("idna").decode("ascii")
    except UnicodeError:
        return _FALLBACK_MSGID_DOMAIN
    return ascii_domain or _FALLBACK_MSGID_DOMAIN


def _safe_filename(filename: str) -> str:
    """No path parts, quotes or control characters in an attachment's name."""
    cleaned = _UNSAFE_FILENAME.sub("_", filename).strip(" .")
    return cleaned or "attachment"
