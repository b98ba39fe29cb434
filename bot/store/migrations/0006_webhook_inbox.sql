-- Webhook deliveries, written before they are acknowledged and deleted once processed:
-- a process that dies with deliveries queued processes them after the restart.
CREATE TABLE webhook_inbox (
    id           INTEGER PRIMARY KEY,
    channel      TEXT NOT NULL,
    body         BLOB NOT NULL,
    received_at  TEXT NOT NULL
);
