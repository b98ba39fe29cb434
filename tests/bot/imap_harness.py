"""A real Dovecot for the inbound mail tests, on a loopback port with a throwaway config.

One server per test module; each test takes a user of its own (a fresh, empty mailbox).
Run as root, Dovecot's processes use its own accounts (``dovecot``, ``dovenull``) and the
mail lives in a directory they own; run as anyone else, everything runs as that user.
"""

from __future__ import annotations

import contextlib
import imaplib
import itertools
import os
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid
from pathlib import Path

HOST = "127.0.0.1"
PASSWORD = "secreto-de-prueba"
USERS = 80


def dovecot_binary() -> str | None:
    found = shutil.which("dovecot")
    if found:
        return found
    return "/usr/sbin/dovecot" if Path("/usr/sbin/dovecot").exists() else None


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((HOST, 0))
        return int(sock.getsockname()[1])


@dataclass
class Dovecot:
    port: int
    root: Path
    process: subprocess.Popen[bytes]
    _users: Iterator[int] = field(default_factory=lambda: itertools.count(1))

    def new_user(self) -> str:
        number = next(self._users)
        assert number <= USERS, "raise USERS in tests/bot/imap_harness.py"
        return f"buzon{number}"

    def client(self, user: str) -> imaplib.IMAP4:
        imap = imaplib.IMAP4(HOST, self.port, timeout=10)
        imap.login(user, PASSWORD)
        return imap

    def append(self, user: str, *messages: bytes, folder: str = "INBOX") -> None:
        imap = self.client(user)
        try:
            for raw in messages:
                typ, _ = imap.append(folder, "", imaplib.Time2Internaldate(time.time()), raw)
                assert typ == "OK"
        finally:
            imap.logout()

    def uids(self, user: str, folder: str, criteria: str = "ALL") -> list[int]:
        imap = self.client(user)
        try:
            typ, _ = imap.select(f'"{folder}"')
            if typ != "OK":
                return []
            _, data = imap.uid("SEARCH", criteria)
            return [int(x) for x in (data[0] or b"").split()]
        finally:
            imap.logout()


@contextlib.contextmanager
def running_dovecot(binary: str) -> Iterator[Dovecot]:
    root = Path(tempfile.mkdtemp(prefix="pte-dovecot-"))
    os.chmod(root, 0o755)
    port = free_port()
    if os.geteuid() == 0:
        internal, login = "dovecot", "dovenull"
        mail_user = pwd.getpwnam("dovecot")
    else:
        mail_user = pwd.getpwuid(os.getuid())
        internal = login = mail_user.pw_name
    mail = root / "mail"
    mail.mkdir()
    os.chown(mail, mail_user.pw_uid, mail_user.pw_gid)
    (root / "users").write_text(
        "".join(f"buzon{n}:{{PLAIN}}{PASSWORD}\n" for n in range(1, USERS + 1))
    )
    config = root / "dovecot.conf"
    config.write_text(
        f"""
base_dir = {root}/run
state_dir = {root}/state
log_path = {root}/dovecot.log
protocols = imap
listen = {HOST}
ssl = no
disable_plaintext_auth = no
auth_mechanisms = plain login
default_internal_user = {internal}
default_internal_group = {pwd.getpwnam(internal).pw_name if os.geteuid() == 0 else internal}
default_login_user = {login}
first_valid_uid = 0
first_valid_gid = 0
mail_location = maildir:{mail}/%u
passdb {{
  driver = passwd-file
  args = scheme=PLAIN username_format=%u {root}/users
}}
userdb {{
  driver = static
  args = uid={mail_user.pw_uid} gid={mail_user.pw_gid} home={mail}/%u
}}
service imap-login {{
  chroot =
  inet_listener imap {{
    address = {HOST}
    port = {port}
  }}
  inet_listener imaps {{
    port = 0
  }}
}}
service anvil {{
  chroot =
}}
"""
    )
    process = subprocess.Popen(
        [binary, "-F", "-c", str(config)], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )
    try:
        _wait_for_greeting(port, process, root)
        yield Dovecot(port, root, process)
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        if process.stderr is not None:
            process.stderr.close()
        shutil.rmtree(root, ignore_errors=True)


def _wait_for_greeting(port: int, process: subprocess.Popen[bytes], root: Path) -> None:
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        if process.poll() is not None:
            log = (root / "dovecot.log").read_text() if (root / "dovecot.log").exists() else ""
            raise RuntimeError(f"dovecot exited: {log[-2000:]}")
        try:
            with socket.create_connection((HOST, port), timeout=1) as sock:
                if sock.recv(100).startswith(b"* OK"):
                    return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError("dovecot did not answer on its port")


def mail(
    sender: str,
    subject: str,
    body: str,
    *,
    to: str = "asistente@pcm.gob.pe",
    cc: str | None = None,
    in_reply_to: str | None = None,
    headers: dict[str, str] | None = None,
    attachments: list[tuple[str, bytes, str]] | None = None,
    message_id: str | None = None,
) -> bytes:
    msg = EmailMessage()
    msg["From"] = sender
    msg["To"] = to
    if cc:
        msg["Cc"] = cc
    msg["Subject"] = subject
    msg["Date"] = format_datetime(datetime.now(UTC))
    msg["Message-ID"] = message_id or make_msgid(domain="prueba.test")
    if in_reply_to:
        msg["In-Reply-To"] = in_reply_to
        msg["References"] = in_reply_to
    for name, value in (headers or {}).items():
        msg[name] = value
    msg.set_content(body)
    for filename, content, mime in attachments or []:
        maintype, _, subtype = mime.partition("/")
        msg.add_attachment(content, maintype=maintype, subtype=subtype, filename=filename)
    return msg.as_bytes()
