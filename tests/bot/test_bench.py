"""``pte-bot bench`` on a handful of officers: it runs end to end and reports. Not timed."""

from __future__ import annotations

import argparse
import asyncio
import json
from pathlib import Path

import pytest

from bot.bench import throughput as bench
from bot.cli import _parser
from bot.settings import Settings
from bot.texts import Texts

KEYS = {
    "updates",
    "updates_per_s",
    "p50_ms",
    "p99_ms",
    "peak_rss_mb",
    "ceiling_updates_per_s",
    "pickle_updates_per_s",
    "ratio_vs_ceiling",
    "ratio_vs_pickle",
    "officers",
    "machine",
}


def test_bench_reports_every_officer_served(
    settings: Settings, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "bench.json"
    args = argparse.Namespace(
        officers=5, out=str(out), skip_pickle=False, scaling=False, rounds=2, interleave=False
    )

    assert bench.main(settings, args) == 0

    lines = capsys.readouterr().out.strip().splitlines()
    result = json.loads(lines[-1])
    assert set(result) >= KEYS
    assert result["officers"] == 5
    assert result["updates"] == 5 * len(bench.script(Texts()))
    assert result["replies_ok"] is True  # every officer got every reply, in our bot
    assert result["ceiling_replies_ok"] is True
    assert result["pickle_replies_ok"] is True
    assert result["durable_ok"] is True  # every update, state and reply committed
    assert result["transcripts_match"] is True  # the peers said exactly what we said
    # Two rounds of the three runs; the ratios are the median of the rounds' ratios.
    assert result["rounds"] == 2
    assert len(result["each_round"]) == 2
    ratios = sorted(r["ratio_vs_ceiling"] for r in result["each_round"])
    assert result["ratio_vs_ceiling"] == round((ratios[0] + ratios[1]) / 2, 3)
    assert all(r["pickle_updates_per_s"] > 0 for r in result["each_round"])
    assert {"platform", "cpu_count", "python"} <= set(result["machine"])
    assert json.loads(out.read_text(encoding="utf-8")) == result
    assert not settings.data_dir.exists()  # a temporary database, never the user's


def test_the_contenders_take_turns_unless_asked_to_run_one_after_another() -> None:
    """Side by side is the default: one after another, each contender meets its own moments
    of the VM's drifting speed (see :func:`bench.compare`)."""
    parse = _parser().parse_args
    assert parse(["bench", "--officers", "2000"]).interleave is True
    assert parse(["bench", "--interleave"]).interleave is True
    assert parse(["bench", "--one-after-another"]).interleave is False


async def test_interleaved_rounds_serve_every_officer_and_time_each_contender_apart(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("bot.bench.runs.SLICE", 3)  # 4 officers: slices of 3 and of 1
    result = await bench.compare(settings, 4, pickle=True, rounds=2, interleave=True)

    assert result["interleaved"] is True
    assert result["updates"] == 4 * len(bench.script(Texts()))
    assert result["replies_ok"] is True
    assert result["ceiling_replies_ok"] is True
    assert result["pickle_replies_ok"] is True
    assert result["durable_ok"] is True
    assert result["transcripts_match"] is True  # the peers said exactly what we said
    assert len(result["each_round"]) == 2
    for each in result["each_round"]:
        assert each["updates_per_s"] > 0
        assert each["ceiling_updates_per_s"] > 0
        assert each["pickle_updates_per_s"] > 0
        ratio = each["updates_per_s"] / each["ceiling_updates_per_s"]
        assert abs(each["ratio_vs_ceiling"] - ratio) < 0.01
    assert result["peak_rss_scope"] == "process"  # all three alive at once
    assert not settings.data_dir.exists()  # a temporary database, never the user's


async def test_scaling_mode_reports_a_ratio(settings: Settings) -> None:
    result = await bench.scaling(settings, sizes=(2, 4))

    # The small size before and after the large one; the ratio against their mean.
    assert [run["officers"] for run in result["runs"]] == [2, 4, 2]
    assert all(run["replies_ok"] and run["durable_ok"] for run in result["runs"])
    small, large, again = (run["updates_per_s"] for run in result["runs"])
    assert result["throughput_ratio"] == round(large / ((small + again) / 2), 3)
    # Each run's own peak, the largest run's at the top, the whole process's beside it.
    assert all(run["peak_rss_mb"] > 0 for run in result["runs"])
    assert result["peak_rss_mb"] == result["runs"][1]["peak_rss_mb"]
    assert result["process_peak_rss_mb"] >= result["peak_rss_mb"]
    assert result["peak_rss_scope"] in ("run", "process")


def test_the_fake_server_keeps_what_a_tap_needs_and_hands_it_back() -> None:
    server = bench.FakeTelegram()
    markup = json.dumps({"inline_keyboard": [[{"text": "Acepto", "callback_data": "1:yes"}]]})
    code, body = server.call(
        "sendMessage", {"chat_id": "7", "text": "¿Aceptas?", "reply_markup": markup}
    )
    assert code == 200
    assert body["result"]["reply_markup"] == json.loads(markup)
    message, data = server.button(7, "Acepto")
    assert data == "1:yes"
    assert message["message_id"] == body["result"]["message_id"]
    assert message["chat"]["id"] == 7
    assert message["reply_markup"] == json.loads(markup)
    with pytest.raises(bench.BenchError):
        server.button(7, "No acepto")


def test_fake_bot_api_refuses_to_edit_an_unknown_message() -> None:
    server = bench.FakeTelegram()
    code, body = server.call("editMessageText", {"chat_id": "1", "message_id": "9", "text": "x"})
    assert code == 400
    assert "not found" in body["description"]
    code, body = server.call("sendMessage", {"chat_id": "1", "text": "hola"})
    assert code == 200
    assert body["result"]["message_id"] == 1


def test_bench_feeds_the_product_as_polling_does_with_a_window(
    settings: Settings, capsys: pytest.CaptureFixture[str]
) -> None:
    args = argparse.Namespace(officers=12, out=None, skip_pickle=True, scaling=False, window=4)

    assert bench.main(settings, args) == 0

    result = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert result["window"] == 4
    assert result["replies_ok"] is True
    assert result["durable_ok"] is True
    assert result["transcripts_match"] is True  # same replies, in order per chat


async def test_status_lookup_mode_compares_few_and_many_tickets(settings: Settings) -> None:
    from bot.bench.status import status_lookup

    result = await status_lookup(settings, sizes=(8, 40), lookups=5)

    assert [run["tickets"] for run in result["runs"]] == [8, 40]
    assert result["status_lookup_ratio"] > 0


async def test_an_officer_waits_for_its_reply_and_a_reply_that_never_comes_fails_the_run(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from bot.bench import officers
    from bot.bench.fake_telegram import BenchError, FakeTelegram

    monkeypatch.setattr(officers, "WATCH_EVERY", 0.0)
    tracker = officers.Tracker(FakeTelegram(transcripts=[]))
    tracker.expect(1, 1, 0.0)
    waiting = asyncio.ensure_future(tracker.ready(1))
    await asyncio.sleep(0)
    assert not waiting.done()
    tracker.delivered(1, 1)  # the reply came: the officer goes on
    await waiting
    assert len(tracker.latencies) == 1
    monkeypatch.setattr(officers, "REPLY_TIMEOUT", 0.0)
    tracker.expect(2, 1, 0.0)
    with pytest.raises(BenchError, match="chat 2: no reply"):
        async with asyncio.timeout(5):  # a watchdog that never looks fails here instead
            await tracker.ready(2)  # the watchdog's next look fails it
