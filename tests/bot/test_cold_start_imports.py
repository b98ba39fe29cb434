"""What ``pte-bot run`` imports before its first getUpdates (issue 18: cold start).

The real ``python -X importtime -m bot run`` against the benchmark's fake Bot API on loopback,
killed as soon as it first polls: every module named in its import log was imported on the
way to that first getUpdates. Modules only some later update, a configured mailbox or another
command needs must not be among them; each is imported where it is first used. About which
modules load, never about time.
"""

from __future__ import annotations

import asyncio
import os
import re
import sys
import time
from pathlib import Path

from bot.bench.cold_start import TOKEN
from bot.bench.fake_api import FloodLimitedBotAPI

# Imported where they are first used, not on the way to the first getUpdates.
NOT_BEFORE_FIRST_POLL = frozenset(
    {
        "holidays",  # the business calendar's national holidays (bot.domain.calendar)
        "jinja2",  # templates: the environment is built on the first render (bot.texts)
        "aiosmtplib",  # an SMTP server, when one is configured and a mail goes out
        "email.policy",  # building or reading a mail
        "stdnum",  # RUC and DNI check digits
        "phonenumbers",
        "email_validator",
        "filetype",  # naming a refused file's type
        "pypdf",
        "PIL",
        "bot.domain.formato",  # the Formato, built when a request is sent
        "openpyxl",
        "imaplib",  # the IMAP reader, when PTEBOT_IMAP_HOST is set
        "bot.channels.mail",
        "bot.mail.imap",
        "bot.mail.parse",
        "bot.desk.mail_rules",
        "aiohttp",  # the webhook server (serve) and the benchmarks' fake Bot API
        "bot.channels.server",
        "bot.channels.whatsapp",
        "bot.channels.terminal",
        "bot.bench",
    }
)
_IMPORTED = re.compile(r"^import time:\s+\d+ \|\s+\d+ \|\s*(\S+)\s*$")
TIMEOUT_S = 60.0


async def test_run_imports_nothing_it_needs_later_before_its_first_poll(tmp_path: Path) -> None:
    api = FloodLimitedBotAPI(TOKEN, None, clock=time.perf_counter)
    await api.start()
    env = {
        **os.environ,
        "TELEGRAM_BOT_TOKEN": TOKEN,
        "TELEGRAM_BASE_URL": api.base_url,
        "TELEGRAM_BASE_FILE_URL": api.base_file_url,
        "PTEBOT_DATA_DIR": str(tmp_path / "data"),
        "PTEBOT_LOG_LEVEL": "WARNING",
        # A deployment has specialists (their command menus are set at start). That the
        # jobs' first run, whose staff digest loads the holidays, waits is shown below, at
        # any hour: this run's import log alone depends on the moment it runs.
        "PTEBOT_STAFF_TELEGRAM_IDS": "9001",
    }
    for name in ("PTEBOT_IMAP_HOST", "PTEBOT_SMTP_HOST"):  # the defaults: no mail servers
        env.pop(name, None)
    log = tmp_path / "importtime.txt"
    try:
        with log.open("wb") as stderr:
            process = await asyncio.create_subprocess_exec(
                sys.executable,
                "-X",
                "importtime",
                "-m",
                "bot",
                "run",
                env=env,
                cwd=tmp_path,  # no .env of the checkout
                stdin=asyncio.subprocess.DEVNULL,
                stdout=asyncio.subprocess.DEVNULL,
                stderr=stderr,
            )
            try:
                await asyncio.wait_for(api.polled.wait(), TIMEOUT_S)
            finally:
                # Killed, not stopped: the log ends where the first getUpdates was sent.
                if process.returncode is None:
                    process.kill()
                await process.wait()
    finally:
        await api.stop()

    imported = {
        match.group(1)
        for line in log.read_text("utf-8", "replace").splitlines()
        if (match := _IMPORTED.match(line))
    }
    assert "bot.channels.telegram" in imported  # the log is the run's
    too_early = {
        later
        for name in imported
        for later in NOT_BEFORE_FIRST_POLL
        if name == later or name.startswith(later + ".")
    }
    assert not too_early, f"imported before the first getUpdates: {sorted(too_early)}"
