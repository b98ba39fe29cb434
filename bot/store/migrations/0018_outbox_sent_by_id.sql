-- The purge of sent messages (bot/store/retention.py) found them by this index on sent_at,
-- which every delivered message wrote to: one page of the WAL in ten of a turn's COMMIT.
-- It now reads the outbox in id order (the order the rows were written in) and stops at
-- the first row written within the 14 days kept: a message sent before that was written
-- before it. What it reads is what it deletes, plus the few old rows still kept (failed
-- messages, held notices).
DROP INDEX outbox_done_at;
