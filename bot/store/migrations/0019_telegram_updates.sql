-- A Telegram update is recognised by its update_id, a number Telegram hands out in
-- increasing order. As a row of processed_events (keyed by channel and text, plus an index
-- on channel and age for the purge) every update wrote two b-trees, and appending to a
-- b-tree keyed by text splits three pages at a time: 2.7 pages of the WAL in each turn's
-- COMMIT of 8.4. Keyed by the number itself, the rows are a table's rowids: appending
-- writes one page, the key finds a redelivery, and the key's order is the order of arrival,
-- which the purge reads instead of an index (bot/store/retention.py).
CREATE TABLE telegram_updates (
    update_id  INTEGER PRIMARY KEY,
    at         TEXT NOT NULL
);

INSERT OR IGNORE INTO telegram_updates (update_id, at)
SELECT CAST(event_id AS INTEGER), at FROM processed_events
 WHERE channel = 'telegram' AND length(event_id) BETWEEN 1 AND 18
   AND event_id NOT GLOB '*[^0-9]*';

DELETE FROM processed_events
 WHERE channel = 'telegram' AND length(event_id) BETWEEN 1 AND 18
   AND event_id NOT GLOB '*[^0-9]*';
