"""Issue 14, point 8: after the retention purge the database holds people and tickets, not
messages. The figure for 30,000 users is ``pte-bot bench --growth 30000`` (README,
Reliability); this runs the same benchmark with 300."""

from __future__ import annotations

from pathlib import Path

from bot.bench.growth import growth


async def test_after_the_purge_the_database_grows_with_people_not_messages(
    tmp_path: Path,
) -> None:
    result = await growth(300, tmp_path / "data")
    before, after = result["before_purge"], result["after_purge"]
    assert before["rows"]["processed_events"] == 150 * 5  # WhatsApp's
    assert before["rows"]["telegram_updates"] == 150 * 5
    assert before["rows"]["outbox"] >= 300 * 7
    assert before["rows"]["wa_statuses"] == before["rows"]["outbox"] // 2 * 3
    assert after["rows"] == {
        "people": 300,
        "chat_identities": 300,
        "consents": 300,
        "conversations": 300,
        "processed_events": 0,
        "telegram_updates": 0,
        "outbox": 0,
        "wa_statuses": 0,
    }
    assert after["bytes_in_use"] < before["bytes_in_use"] / 3
    assert after["file_bytes_after_vacuum"] <= after["bytes_in_use"]
