"""``pte-bot``: parse arguments, load settings, run. No work happens at import time."""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal
import sys
from collections.abc import Sequence

from bot.app import create_app
from bot.errors import ConfigError, PteBotError
from bot.modes import restrict_umask
from bot.settings import Settings, load_settings

log = logging.getLogger("bot")


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="pte-bot", description="Asistente PTE")
    commands = parser.add_subparsers(dest="command", required=True)
    chat = commands.add_parser("chat", help="the assistant in this terminal (no token)")
    chat.add_argument("--user", default="local", help="who you are in the local database")
    chat.add_argument(
        "--staff", action="store_true", help="chat as a help-desk specialist (/pendientes)"
    )
    commands.add_parser("run", help="Telegram long polling")
    commands.add_parser(
        "serve", help="webhook server: Telegram and WhatsApp webhooks, /healthz (see README)"
    )
    from bot.staff_cli import add_parser as add_staff_parser

    add_staff_parser(commands)
    bench = commands.add_parser("bench", help="throughput benchmark (see README)")
    bench.add_argument("--officers", type=int, default=2000)
    bench.add_argument("--out", default=None, help="also write the JSON result here")
    bench.add_argument("--skip-pickle", action="store_true", help="no Pickle peer")
    bench.add_argument("--scaling", action="store_true", help="1,000 vs 10,000 officers")
    bench.add_argument(
        "--status-lookup",
        action="store_true",
        help="status check with 1,000 vs 1,000,000 tickets",
    )
    bench.add_argument(
        "--cold-start", action="store_true", help="pte-bot run to its first getUpdates"
    )
    bench.add_argument(
        "--all",
        action="store_true",
        help="the comparison, --scaling, --status-lookup and --cold-start in one JSON line",
    )
    bench.add_argument(
        "--rounds",
        type=int,
        default=3,
        help="this many rounds of the product, the ceiling and the Pickle peer",
    )
    bench.add_argument(
        "--interleave",
        action="store_true",
        default=True,
        help="(the default) in each round, product, ceiling and Pickle peer side by side,"
        " taking turns every 250 officers",
    )
    bench.add_argument(
        "--one-after-another",
        dest="interleave",
        action="store_false",
        help="in each round, product, ceiling and Pickle peer one after another",
    )
    bench.add_argument(
        "--window",
        type=int,
        default=1,
        help="product: updates in flight, fed through the update processor as polling does",
    )
    bench.add_argument(
        "--soak", action="store_true", help="officers with faults and kill -9, then invariants"
    )
    bench.add_argument("--seconds", type=float, default=60.0, help="soak: how long")
    bench.add_argument("--kill-every", type=float, default=5.0, help="soak: seconds per life")
    bench.add_argument("--seed", type=int, default=1, help="soak: random seed")
    bench.add_argument("--data", default=None, help="soak: data dir (default: a new temp dir)")
    bench.add_argument(
        "--burst", type=int, default=None, metavar="N", help="N officers at once under a limit"
    )
    bench.add_argument("--flood-limit", type=float, default=30.0, help="burst: messages/s")
    bench.add_argument("--skip-peer", action="store_true", help="burst: no PTB peer")
    bench.add_argument(
        "--edge", action="store_true", help="hostile traffic against pte-bot serve (README)"
    )
    bench.add_argument("--connections", type=int, default=2000, help="edge: bad signatures")
    bench.add_argument("--body-bytes", type=int, default=1_000_000, help="edge: each body")
    bench.add_argument("--slow", type=int, default=5000, help="edge: slow connections")
    bench.add_argument("--hold", type=float, default=15.0, help="edge: seconds they stay")
    bench.add_argument(
        "--growth", type=int, default=None, metavar="N", help="N users, then the purge"
    )
    return parser


def configure_logging(level: str) -> None:
    logging.basicConfig(
        level=level.upper(),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    # httpx logs every request URL at INFO, and the URL contains the bot token.
    logging.getLogger("httpx").setLevel(logging.WARNING)
    # At DEBUG these log whole updates and requests (DNIs, codes): never below INFO.
    for noisy in ("telegram", "httpcore", "aiosqlite"):
        logging.getLogger(noisy).setLevel(max(logging.INFO, logging.getLogger().level))


async def _chat(settings: Settings, user: str, staff: bool = False) -> None:
    from bot.channels.terminal import CHANNEL, run_chat

    app = await create_app(settings)
    if staff:  # the local operator works the help desk's queue
        app.staff[CHANNEL] = frozenset({user})
    try:
        await run_chat(app, sys.stdin, sys.stdout, chat_id=user)
    finally:
        await app.close()


async def _staff(settings: Settings, args: argparse.Namespace) -> None:
    from bot.staff_cli import run

    app = await create_app(settings)
    try:
        await run(app, args, sys.stdout)
    finally:
        await app.close()


async def _run(settings: Settings) -> None:
    from bot.channels.telegram import TelegramChannel, run_polling

    settings.require("TELEGRAM_BOT_TOKEN")
    app = await create_app(settings)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    channel = TelegramChannel(app)
    reader = None
    if settings.imap_host:  # IMAP and mail parsing imported only when a mailbox is read
        from bot.channels.mail import start_mail_reader

        reader = start_mail_reader(app, app.deliver)
    try:
        log.info("Telegram long polling started")
        await run_polling(channel, stop)
    finally:
        if reader is not None:
            await reader.stop()
        await app.close()


async def _serve(settings: Settings) -> None:
    from bot.channels.server import serve

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    await serve(settings, stop)


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    restrict_umask()  # whatever the program (or a library) writes: 0600 files, 0700 folders
    try:
        settings = load_settings()
        configure_logging("WARNING" if args.command == "chat" else settings.log_level)
        if args.command == "chat":
            asyncio.run(_chat(settings, args.user, args.staff))
        elif args.command == "run":
            asyncio.run(_run(settings))
        elif args.command == "serve":
            asyncio.run(_serve(settings))
        elif args.command == "staff":
            asyncio.run(_staff(settings, args))
        elif args.command == "bench":
            if args.soak:
                from bot.bench.soak import run_soak

                return run_soak(args)
            if args.edge:
                from bot.bench.edge import main as edge_main

                return edge_main(args)
            if args.growth is not None:
                from bot.bench.growth import main as growth_main

                return growth_main(args)

            if args.burst is not None:
                from bot.bench.burst import main as burst_main

                return burst_main(settings, args)
            from bot.bench.throughput import main as bench_main

            return bench_main(settings, args)
    except ConfigError as error:
        print(f"pte-bot: {error}", file=sys.stderr)
        return 2
    except PteBotError as error:
        print(f"pte-bot: {error}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    return 0
