"""``pte-bot bench``: synthetic officers through the real PTB ``Application``, and two PTB peers.

Every officer has the same conversation (8 updates, :mod:`bot.bench.officers`), fed
identically to three contenders (:mod:`bot.bench.runs`):

* **product**: our bot on a fresh SQLite file (:mod:`bot.bench.product`).
* **ceiling**: a stock ``ConversationHandler`` with the same texts and keyboards, in memory.
* **pickle**: the same handler with ``PicklePersistence`` flushed after every update
  (:mod:`bot.bench.peers`).

All three talk to an in-process fake Bot API (:mod:`bot.bench.fake_telegram`). This module
owns the comparison (rounds of the three), ``--scaling`` and ``main``. The last printed line
is the JSON result.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

# Re-exported: ``throughput.X`` is where the tests have found these.
from bot.bench.fake_telegram import BenchError as BenchError
from bot.bench.fake_telegram import FakeTelegram as FakeTelegram
from bot.bench.host import machine, process_peak_rss_mb, reset_peak_rss, status_kib
from bot.bench.officers import script as script
from bot.bench.runs import Result, run_interleaved, run_peer, run_product
from bot.settings import Settings
from bot.texts import Texts

SCALING_SIZES = (1_000, 10_000)
ROUNDS = 3  # rounds of the product, the ceiling and the Pickle peer
TARGETS = {
    "updates_per_s": 1_000.0,
    "ratio_vs_ceiling": 0.75,
    "ratio_vs_pickle": 4.0,  # issue 18 (was 20x, above what the in-memory peer reaches)
    "p99_ms": 10.0,
    "scaling_tolerance": 0.15,
}


def _ratio(a: float, b: float | None) -> float | None:
    return round(a / b, 3) if b else None


def _line(result: Result, label: str) -> str:
    return (
        f"{label:<9} {result.updates_per_s:8.0f} updates/s  wall {result.wall_s:6.2f} s  "
        f"p50 {result.percentile_ms(0.50):6.2f} ms  p99 {result.percentile_ms(0.99):7.2f} ms  "
        f"cpu {result.cpu_us_per_update:5.0f} us/update  "
        f"replies {'ok' if result.replies_ok else 'MISSING'}"
    )


def _pooled(runs: Sequence[Result]) -> Result:
    """Several runs of one contender as one: their updates, time and latencies together."""
    first = runs[0]
    return Result(
        first.name,
        first.officers,
        sum(run.updates for run in runs),
        sum(run.wall_s for run in runs),
        sum(run.cpu_s for run in runs),
        [latency for run in runs for latency in run.latencies],
        all(run.replies_ok for run in runs),
        first.transcript,
        max(run.peak_rss_mb for run in runs),
        first.extra,
    )


def _median(values: Sequence[float | None]) -> float | None:
    present = [value for value in values if value is not None]
    return round(statistics.median(present), 3) if present else None


async def compare(
    settings: Settings,
    officers: int,
    *,
    pickle: bool,
    window: int = 1,
    rounds: int = ROUNDS,
    interleave: bool = True,
) -> dict[str, Any]:
    """The product, the ceiling and the Pickle peer, ``rounds`` times: side by side, taking
    turns slice by slice (see :func:`~bot.bench.runs.drive_interleaved`), or with
    ``interleave=False`` one after another.

    A 2-vCPU VM's speed drifts by 10-20 % over a minute or two (measured: the ceiling ran
    at 1,023 and at 1,477 updates/s in two rounds of one run). One after another, each
    contender meets its own moments of the VM and a round's ratio swings with them (0.67 to
    0.94 on the same code); side by side, turns of about 0.3 s share those moments. Each
    ratio is taken within a round and the median of the rounds' ratios is reported;
    throughput and latencies are over all rounds."""
    texts = Texts(helpdesk=settings.helpdesk_email)
    actions = script(texts)
    print(
        f"Asistente PTE bench: {officers} officers x {len(actions)} updates = "
        f"{officers * len(actions)} updates, interleaved in waves; product window {window}; "
        f"{rounds} rounds, "
        + ("contenders side by side" if interleave else "contenders one after another")
    )
    products: list[Result] = []
    ceilings: list[Result] = []
    peers: list[Result] = []
    per_run = True
    first_payloads: list[str] = []
    if interleave:  # what the peers send: the product's rows for one officer
        first_payloads = (await run_product(settings, texts, 1, window)).extra["first_payloads"]
        per_run = False
    for number in range(1, rounds + 1):
        if interleave:
            reset_peak_rss()
            lanes = await run_interleaved(
                settings, texts, first_payloads, officers, window, pickle=pickle
            )
            products.append(lanes[0])
            ceilings.append(lanes[1])
            peers.extend(lanes[2:])
            print(_line(lanes[0], f"product {number}") + "  (interleaved slice by slice)")
            print(_line(lanes[1], f"ceiling {number}") + "  (PTB ConversationHandler, in memory)")
            for pickled in lanes[2:]:
                print(_line(pickled, f"pickle {number}") + "  (PicklePersistence per update)")
            continue
        per_run = reset_peak_rss() and per_run
        product = await run_product(settings, texts, officers, window)
        products.append(product)
        print(_line(product, f"product {number}") + f"  peak RSS {product.peak_rss_mb:.0f} MB")
        reset_peak_rss()
        payloads = products[0].extra["first_payloads"]
        ceiling = await run_peer(texts, payloads, officers, pickle=False)
        ceilings.append(ceiling)
        print(_line(ceiling, f"ceiling {number}") + "  (PTB ConversationHandler, in memory)")
        if pickle:
            reset_peak_rss()
            pickled = await run_peer(texts, payloads, officers, pickle=True)
            peers.append(pickled)
            print(
                _line(pickled, f"pickle {number}")
                + "  (PicklePersistence flushed per update, "
                + f"{pickled.extra['pickle_bytes']} bytes)"
            )
    print(f"          (SQLite committed per update; db {products[0].extra.get('db')})")
    each = [
        {
            "updates_per_s": round(run.updates_per_s, 1),
            "p99_ms": round(run.percentile_ms(0.99), 3),
            "ceiling_updates_per_s": round(top.updates_per_s, 1),
            "pickle_updates_per_s": round(peers[i].updates_per_s, 1) if peers else None,
            "ratio_vs_ceiling": _ratio(run.updates_per_s, top.updates_per_s),
            "ratio_vs_pickle": _ratio(run.updates_per_s, peers[i].updates_per_s)
            if peers
            else None,
            "cpu_ratio_vs_ceiling": _ratio(top.cpu_us_per_update, run.cpu_us_per_update),
            "turns_per_commit": run.extra.get("turns_per_commit"),
            "marks_carried": run.extra.get("marks_carried"),
        }
        for i, (run, top) in enumerate(zip(products, ceilings, strict=True))
    ]
    same = all(run.transcript == products[0].transcript for run in [*products, *ceilings, *peers])
    product = _pooled(products)
    ceiling = _pooled(ceilings)
    peer = _pooled(peers) if peers else None
    result: dict[str, Any] = {
        "officers": officers,
        "window": window,
        "rounds": rounds,
        "interleaved": interleave,
        "updates_per_officer": len(actions),
        "updates": products[0].updates,
        "wall_s": round(product.wall_s, 3),
        "updates_per_s": round(product.updates_per_s, 1),
        "p50_ms": round(product.percentile_ms(0.50), 3),
        "p99_ms": round(product.percentile_ms(0.99), 3),
        "max_ms": round(product.percentile_ms(1.0), 3),
        "cpu_us_per_update": round(product.cpu_us_per_update, 1),
        "turns_per_commit": products[0].extra.get("turns_per_commit"),
        "marks_carried": sum(run.extra.get("marks_carried") or 0 for run in products),
        "peak_rss_mb": round(product.peak_rss_mb, 1),
        # "run": each product run alone (VmHWM reset before it); "process": ru_maxrss.
        "peak_rss_scope": "run" if per_run else "process",
        "process_peak_rss_mb": round(process_peak_rss_mb(), 1),
        "replies_ok": product.replies_ok,
        "durable_ok": all(run.extra.get("durable_ok") for run in products),
        "ceiling_updates_per_s": round(ceiling.updates_per_s, 1),
        "ceiling_p50_ms": round(ceiling.percentile_ms(0.50), 3),
        "ceiling_p99_ms": round(ceiling.percentile_ms(0.99), 3),
        "ceiling_cpu_us_per_update": round(ceiling.cpu_us_per_update, 1),
        "ceiling_replies_ok": ceiling.replies_ok,
        "pickle_updates_per_s": round(peer.updates_per_s, 1) if peer else None,
        "pickle_p50_ms": round(peer.percentile_ms(0.50), 3) if peer else None,
        "pickle_p99_ms": round(peer.percentile_ms(0.99), 3) if peer else None,
        "pickle_cpu_us_per_update": round(peer.cpu_us_per_update, 1) if peer else None,
        "pickle_replies_ok": peer.replies_ok if peer else None,
        # The median of the rounds' ratios (each round's runs seconds apart; see above).
        "ratio_vs_ceiling": _median([r["ratio_vs_ceiling"] for r in each]),
        "ratio_vs_pickle": _median([r["ratio_vs_pickle"] for r in each]),
        # The same ratio from CPU time: steadier when other processes share the machine.
        "cpu_ratio_vs_ceiling": _median([r["cpu_ratio_vs_ceiling"] for r in each]),
        "each_round": each,
        "transcripts_match": same,
    }
    result["targets_met"] = {
        "updates_per_s": result["updates_per_s"] >= TARGETS["updates_per_s"],
        "ratio_vs_ceiling": (result["ratio_vs_ceiling"] or 0) >= TARGETS["ratio_vs_ceiling"],
        "ratio_vs_pickle": (
            None
            if peer is None
            else (result["ratio_vs_pickle"] or 0) >= TARGETS["ratio_vs_pickle"]
        ),
        "p99_ms": result["p99_ms"] <= TARGETS["p99_ms"],
    }
    result["machine"] = machine()
    print(
        f"ratio vs ceiling {result['ratio_vs_ceiling']} (rounds: "
        f"{', '.join(str(r['ratio_vs_ceiling']) for r in each)})  ratio vs pickle "
        f"{result['ratio_vs_pickle']}  same texts and keyboards: {'yes' if same else 'NO'}"
    )
    return result


async def scaling(
    settings: Settings, sizes: Sequence[int] = SCALING_SIZES, window: int = 1
) -> dict[str, Any]:
    """Throughput at the largest size against the smallest, which runs before and after it
    (1,000; 10,000; 1,000): the machine's drift over the long run cancels out in the mean of
    the two small runs around it."""
    texts = Texts(helpdesk=settings.helpdesk_email)
    runs: list[dict[str, Any]] = []
    per_run = True
    order = [*sizes, sizes[0]] if len(sizes) > 1 else list(sizes)
    for officers in order:
        # Each run's own peak: from the RSS it starts with (what the earlier run freed was
        # handed back first), not the process's since it started.
        per_run = reset_peak_rss() and per_run
        at_start = status_kib("VmRSS")
        product = await run_product(settings, texts, officers, window)
        print(_line(product, f"{officers}") + f"  officers  peak RSS {product.peak_rss_mb:.0f} MB")
        runs.append(
            {
                "officers": officers,
                "updates": product.updates,
                "updates_per_s": round(product.updates_per_s, 1),
                "p50_ms": round(product.percentile_ms(0.50), 3),
                "p99_ms": round(product.percentile_ms(0.99), 3),
                "cpu_us_per_update": round(product.cpu_us_per_update, 1),
                "peak_rss_mb": round(product.peak_rss_mb, 1),
                "rss_at_start_mb": round(at_start / 1024, 1) if at_start is not None else None,
                "replies_ok": product.replies_ok,
                "durable_ok": product.extra.get("durable_ok"),
            }
        )
    small = [run["updates_per_s"] for run in runs if run["officers"] == sizes[0]]
    first = sum(small) / len(small)
    largest = [run for run in runs if run["officers"] == sizes[-1]][-1]
    last: float = largest["updates_per_s"]
    ratio = round(last / first, 3) if first else 0.0
    print(f"throughput at {sizes[-1]} / at {sizes[0]} officers: {ratio}")
    return {
        "mode": "scaling",
        "window": window,
        "runs": runs,
        "throughput_ratio": ratio,
        "scaling_ratio": ratio,
        "within_15pct": abs(1.0 - ratio) <= TARGETS["scaling_tolerance"],
        # The largest run's own peak (the figure issue 18 sets a bound on), each run's in
        # ``runs``, and the whole process's since it started.
        "peak_rss_mb": largest["peak_rss_mb"],
        "peak_rss_scope": "run" if per_run else "process",
        "process_peak_rss_mb": round(process_peak_rss_mb(), 1),
        "machine": machine(),
    }


def main(settings: Settings, args: argparse.Namespace) -> int:
    """``pte-bot bench``; prints human lines, then the JSON result as the last line.

    ``--all`` runs the comparison, ``--scaling``, ``--status-lookup`` and ``--cold-start``
    one after the other and puts their figures in one JSON line; on its own each flag runs
    its part alone. Every result carries ``scaling_ratio``, ``status_lookup_ratio`` and
    ``cold_start_s`` (None where that part did not run)."""
    os.environ.setdefault("PTB_TIMEDELTA", "true")
    everything = getattr(args, "all", False)
    window = getattr(args, "window", 1)
    ok = True
    extras: dict[str, Any] = {}
    if everything or getattr(args, "cold_start", False):
        from bot.bench.cold_start import cold_start

        extras.update(asyncio.run(cold_start()))
    if everything or getattr(args, "status_lookup", False):
        from bot.bench.status import status_lookup

        status = asyncio.run(status_lookup(settings))
        extras["status_lookup_ratio"] = status["status_lookup_ratio"]
        extras["status_lookup"] = status
    if everything or getattr(args, "scaling", False):
        scaled = asyncio.run(scaling(settings, window=window))
        ok = ok and all(run["replies_ok"] and run["durable_ok"] for run in scaled["runs"])
        extras["scaling_ratio"] = scaled["scaling_ratio"]
        extras["scaling"] = scaled
    only = not everything and any(
        getattr(args, flag, False) for flag in ("cold_start", "status_lookup", "scaling")
    )
    if only:  # one part alone, as before: its own figures at the top level
        part = extras.pop("scaling", None) or extras.pop("status_lookup", None) or {}
        result = {**part, **extras}
    else:
        if args.officers < 1:
            print("pte-bot bench: --officers must be at least 1", file=sys.stderr)
            return 2
        pickle = not getattr(args, "skip_pickle", False)
        rounds = getattr(args, "rounds", ROUNDS)
        interleave = getattr(args, "interleave", True)
        result = asyncio.run(
            compare(
                settings,
                args.officers,
                pickle=pickle,
                window=window,
                rounds=rounds,
                interleave=interleave,
            )
        )
        ok = ok and bool(
            result["replies_ok"] and result["durable_ok"] and result["ceiling_replies_ok"]
        )
        result.update(extras)
    for key in ("scaling_ratio", "status_lookup_ratio", "cold_start_s"):
        result.setdefault(key, None)
    result["machine"] = machine()
    line = json.dumps(result, ensure_ascii=False)
    if args.out:
        Path(args.out).write_text(line + "\n", encoding="utf-8")
    print(line)
    return 0 if ok else 1
