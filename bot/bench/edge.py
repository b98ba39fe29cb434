"""``pte-bot bench --edge``: hostile traffic against a real ``pte-bot serve`` on 127.0.0.1.

The server runs as its own process (``python -m bot serve``, WhatsApp on with made-up
secrets, a fresh data directory) so that its memory is measured alone (``VmRSS`` in
``/proc/<pid>/status``, sampled every 50 ms). Two phases, each with a probe that opens a
new connection and asks ``GET /healthz`` every 100 ms (its worst answer time is reported;
no answer within 5 s counts as a failed probe):

1. **Bad signatures**: ``--connections`` connections at once, each posting a
   ``--body-bytes`` body to ``/webhooks/whatsapp`` with a wrong ``X-Hub-Signature-256``
   (three in four well-formed, ``sha256=`` and 64 hex digits, so the server must hash the
   body to refuse it; one in four ``sha256=00``). Reported: RSS before, at its peak and
   6 seconds after the last connection closed; the answers the clients got.
2. **Slow clients**: ``--slow`` connections held for ``--hold`` seconds: half send nothing,
   half send a request line and then one header byte per second. Reported: the probe's
   worst time, how many of them the server closed before the hold ended.

The server's log is kept: its number of lines shows that refusals are counted, not logged
one by one; the run lasts until the server's once-a-minute summary line is written. The
client raises its own open-files soft limit to the hard one; the server raises its own at
start. The last line printed is JSON.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import multiprocessing
import os
import platform
import resource
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bot.channels.edge import REPORT_EVERY

PROBE_EVERY = 0.1
PROBE_TIMEOUT = 5.0
SAMPLE_EVERY = 0.05
SECRET = "bench-app-secret"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def raise_own_fd_limit() -> int:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


@dataclass
class Probe:
    """/healthz asked every PROBE_EVERY seconds on a new connection, while running."""

    port: int
    times: list[float] = field(default_factory=list)
    failures: int = 0
    connect_worst: float = 0.0  # of the worst time, how long connecting took
    failed_how: Counter[str] = field(default_factory=Counter)
    when: list[float] = field(default_factory=list)

    async def run(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            started = time.monotonic()
            connected = started
            try:
                async with asyncio.timeout(PROBE_TIMEOUT):
                    reader, writer = await asyncio.open_connection("127.0.0.1", self.port)
                    connected = time.monotonic()
                    writer.write(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
                    status = await reader.readline()
                    writer.close()
                if b" 200 " not in status:
                    self.failures += 1
                    self.failed_how[status[:20].decode(errors="replace") or "closed"] += 1
            except (TimeoutError, OSError) as error:
                self.failures += 1
                self.failed_how[type(error).__name__] += 1
            took = time.monotonic() - started
            if took > max(self.times, default=0.0):
                self.connect_worst = connected - started
            self.times.append(took)
            self.when.append(started)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), PROBE_EVERY)

    @property
    def worst(self) -> float:
        return max(self.times, default=0.0)


def _probe_in_child(port: int, stop: Any, results: Any) -> None:
    """The probe in its own process: the attacking clients' event loop does not delay it."""

    async def main() -> Probe:
        probe = Probe(port)
        done = asyncio.Event()
        task = asyncio.create_task(probe.run(done))
        await asyncio.to_thread(stop.wait)
        done.set()
        await task
        return probe

    probe = asyncio.run(main())
    results.put(
        {
            "times": probe.times,
            "failures": probe.failures,
            "connect_worst": probe.connect_worst,
            "failed_how": dict(probe.failed_how),
            "slowest": sorted(
                (
                    (round(t, 3), round(w - probe.when[0], 2))
                    for t, w in zip(probe.times, probe.when, strict=True)
                ),
                reverse=True,
            )[:6],
        }
    )


class ProbeProcess:
    def __init__(self, port: int) -> None:
        context = multiprocessing.get_context("spawn")
        self.stop = context.Event()
        self.results: Any = context.Queue()
        self.process = context.Process(
            target=_probe_in_child, args=(port, self.stop, self.results), daemon=True
        )

    def __enter__(self) -> ProbeProcess:
        self.process.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()

    def outcome(self) -> dict[str, Any]:
        found: dict[str, Any] = self.results.get(timeout=30)
        self.process.join(10)
        times: list[float] = found["times"]
        return {
            "healthz_worst_s": round(max(times, default=0.0), 3),
            "healthz_probes": len(times),
            "healthz_failures": found["failures"],
            "healthz_worst_connect_s": round(found["connect_worst"], 3),
            "healthz_failed_how": found["failed_how"],
            "healthz_slowest_at": found["slowest"],
        }


@dataclass
class Sampler:
    pid: int
    peak: int = 0

    async def run(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            self.peak = max(self.peak, rss_kib(self.pid))
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), SAMPLE_EVERY)


async def bad_delivery(port: int, body: memoryview, index: int, answers: Counter[str]) -> None:
    signature = "sha256=00" if index % 4 == 3 else "sha256=" + f"{index:064x}"
    head = (
        f"POST /webhooks/whatsapp HTTP/1.1\r\nHost: 127.0.0.1\r\n"
        f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n"
        f"X-Hub-Signature-256: {signature}\r\n\r\n"
    ).encode()
    writer = None
    try:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(head)
        for start in range(0, len(body), 64 * 1024):
            writer.write(body[start : start + 64 * 1024])
            await writer.drain()
        status = await asyncio.wait_for(reader.readline(), 30)
        answers[status.split(b" ")[1].decode() if status.count(b" ") >= 2 else "closed"] += 1
    except (OSError, TimeoutError, asyncio.IncompleteReadError):
        answers["reset"] += 1
    finally:
        if writer is not None:
            writer.close()


async def slow_client(port: int, index: int, hold: float, closed: list[int]) -> None:
    try:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
    except OSError:
        closed[0] += 1
        return
    deadline = time.monotonic() + hold
    trickle = b"X-Slow: " + b"a" * 4000
    try:
        if index % 2:
            writer.write(b"POST /webhooks/whatsapp HTTP/1.1\r\nHost: 127.0.0.1\r\n")
        position = 0
        while time.monotonic() < deadline:
            with contextlib.suppress(TimeoutError):
                # The server closing the connection ends the read with b"" at once.
                data = await asyncio.wait_for(reader.read(1024), 1.0)
                if not data:
                    closed[0] += 1
                    return
            if index % 2:
                writer.write(trickle[position % len(trickle) : position % len(trickle) + 1])
                position += 1
                await writer.drain()
    except OSError:
        closed[0] += 1
    finally:
        writer.close()


async def wait_healthy(port: int, process: subprocess.Popen[bytes], within: float) -> None:
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"pte-bot serve exited with {process.returncode}")
        with contextlib.suppress(OSError):
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.write(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            line = await reader.readline()
            writer.close()
            if b" 200 " in line:
                return
        await asyncio.sleep(0.2)
    raise RuntimeError("pte-bot serve did not answer /healthz")


def start_server(data_dir: Path, port: int, log_path: Path) -> subprocess.Popen[bytes]:
    root = Path(__file__).resolve().parents[2]
    keep = {
        "PATH",
        "HOME",
        "LANG",
        "SYSTEMROOT",
        "PTEBOT_HTTP_MAX_CONNECTIONS",
        "PTEBOT_HTTP_MAX_UNVERIFIED",
        "PTE_BATCH",
    }
    env = {k: v for k, v in os.environ.items() if k in keep}
    env.update(
        {
            "PYTHONPATH": str(root),
            "PTEBOT_DATA_DIR": str(data_dir),
            "PTEBOT_HTTP_HOST": "127.0.0.1",
            "PTEBOT_HTTP_PORT": str(port),
            "PTEBOT_LOG_LEVEL": "INFO",
            "WHATSAPP_TOKEN": "bench-token",
            "WHATSAPP_PHONE_NUMBER_ID": "1",
            "WHATSAPP_APP_SECRET": SECRET,
            "WHATSAPP_VERIFY_TOKEN": "bench-verify",
            "WHATSAPP_GRAPH_URL": f"http://127.0.0.1:{free_port()}/v21.0",
        }
    )
    with log_path.open("wb") as log:
        return subprocess.Popen(
            [sys.executable, "-m", "bot", "serve"], cwd=data_dir.parent, env=env, stderr=log
        )


async def edge_bench(
    connections: int = 2000,
    body_bytes: int = 1_000_000,
    slow: int = 5000,
    hold: float = 15.0,
    settle: float = 6.0,
    workdir: Path | None = None,
    wait_report: bool = False,
) -> dict[str, Any]:
    """Run both phases against a new server under ``workdir`` (its data and log)."""
    fds = raise_own_fd_limit()
    port = free_port()
    workdir = workdir or Path(tempfile.mkdtemp(prefix="pte-edge-"))
    log_path = workdir / "serve.log"
    process = start_server(workdir / "data", port, log_path)
    server_started = time.monotonic()
    result: dict[str, Any] = {
        "machine": f"{platform.machine()}, {os.cpu_count()} CPUs, {platform.system()}"
        f" {platform.release()}, Python {platform.python_version()}",
        "load_average": [round(x, 2) for x in os.getloadavg()],
        "client_fd_limit": fds,
    }
    try:
        await wait_healthy(port, process, 60)
        body = memoryview(b"x" * body_bytes)
        # Warm up: the refusal paths once each, so their code and buffers count in "before".
        await asyncio.gather(*(bad_delivery(port, body, i, Counter()) for i in range(8)))
        await asyncio.sleep(1.0)
        before = rss_kib(process.pid)

        stop = asyncio.Event()
        sampler = Sampler(process.pid)
        watcher = asyncio.create_task(sampler.run(stop))
        answers: Counter[str] = Counter()
        with ProbeProcess(port) as probe:
            await asyncio.sleep(0.5)  # the probe's process is up and asking
            started = time.monotonic()
            await asyncio.gather(
                *(bad_delivery(port, body, i, answers) for i in range(connections))
            )
            attack_s = time.monotonic() - started
            await asyncio.sleep(settle)
        stop.set()
        await watcher
        after = rss_kib(process.pid)
        result["bad_signatures"] = {
            "connections": connections,
            "body_bytes": body_bytes,
            "seconds": round(attack_s, 2),
            "answers": dict(answers),
            "rss_before_mb": round(before / 1024, 1),
            "rss_peak_mb": round(sampler.peak / 1024, 1),
            "rss_growth_mb": round((sampler.peak - before) / 1024, 1),
            "rss_after_mb": round(after / 1024, 1),
            "rss_after_vs_before": round(after / before, 3),
            **probe.outcome(),
        }

        stop = asyncio.Event()
        sampler = Sampler(process.pid)
        watcher = asyncio.create_task(sampler.run(stop))
        closed = [0]
        before = rss_kib(process.pid)
        with ProbeProcess(port) as probe:
            await asyncio.sleep(0.5)
            await asyncio.gather(*(slow_client(port, i, hold, closed) for i in range(slow)))
        stop.set()
        await watcher
        result["slow_clients"] = {
            "connections": slow,
            "held_s": hold,
            "closed_by_server": closed[0],
            "rss_before_mb": round(before / 1024, 1),
            "rss_peak_mb": round(sampler.peak / 1024, 1),
            **probe.outcome(),
        }
        if wait_report:  # the server's once-a-minute summary of what it refused
            await asyncio.sleep(max(0.0, REPORT_EVERY + 3 - (time.monotonic() - server_started)))
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(30)
        except subprocess.TimeoutExpired:
            process.kill()
    lines = log_path.read_text(errors="replace").splitlines()
    result["server_log_lines"] = len(lines)
    result["server_log_tracebacks"] = sum("Traceback" in line for line in lines)
    result["server_reports"] = [line for line in lines if "refused at the edge" in line]
    return result


def _workdir(data: str | None) -> Path | None:
    if data is None:
        return None
    path = Path(data)
    path.mkdir(parents=True, exist_ok=True)
    return path


def main(args: argparse.Namespace) -> int:
    result = asyncio.run(
        edge_bench(
            connections=args.connections,
            body_bytes=args.body_bytes,
            slow=args.slow,
            hold=args.hold,
            workdir=_workdir(args.data),
            wait_report=True,
        )
    )
    bad, slow = result["bad_signatures"], result["slow_clients"]
    print(
        f"{bad['connections']} x {bad['body_bytes']} B with bad signatures in"
        f" {bad['seconds']} s: RSS {bad['rss_before_mb']} -> peak {bad['rss_peak_mb']}"
        f" -> {bad['rss_after_mb']} MB after {bad['rss_after_vs_before']:.2f}x;"
        f" /healthz worst {bad['healthz_worst_s']} s ({bad['healthz_failures']} failed);"
        f" answers {bad['answers']}"
    )
    print(
        f"{slow['connections']} slow connections held {slow['held_s']} s:"
        f" /healthz worst {slow['healthz_worst_s']} s ({slow['healthz_failures']} failed),"
        f" {slow['closed_by_server']} closed by the server; RSS peak {slow['rss_peak_mb']} MB"
    )
    print(f"server log: {result['server_log_lines']} lines")
    for line in result["server_reports"]:
        print(f"  {line}")
    line = json.dumps(result)
    print(line)
    if args.out:
        Path(args.out).write_text(line + "\n", encoding="utf-8")
    ok = (
        bad["rss_growth_mb"] < 100
        and bad["healthz_worst_s"] < 1
        and bad["rss_after_vs_before"] <= 1.2
        and slow["healthz_worst_s"] < 1
        and bad["healthz_failures"] == slow["healthz_failures"] == 0
    )
    return 0 if ok else 1
