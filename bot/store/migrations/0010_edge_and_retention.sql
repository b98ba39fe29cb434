-- Issue 14: deliveries that fail are set aside, rows of an erased chat are forgotten once
-- delivered, and what is purged after its retention is found by an index.

-- A webhook delivery that failed while processed (or was replayed by too many starts) is
-- set aside: kept for inspection, counted on /healthz?detail=1, never replayed.
ALTER TABLE webhook_inbox ADD COLUMN attempts INTEGER NOT NULL DEFAULT 0;
ALTER TABLE webhook_inbox ADD COLUMN failed_at TEXT;
ALTER TABLE webhook_inbox ADD COLUMN error TEXT;
CREATE INDEX webhook_inbox_failed ON webhook_inbox(failed_at) WHERE failed_at IS NOT NULL;

-- Written for a chat that erased its data (the confirmation, notices in flight): the row is
-- deleted as soon as it is delivered or refused, so nothing keeps the chat id.
ALTER TABLE outbox ADD COLUMN forget INTEGER NOT NULL DEFAULT 0;

-- The retention purge (bot/retention.py) deletes by age.
CREATE INDEX outbox_done_at ON outbox(sent_at) WHERE state = 'sent';
CREATE INDEX wa_statuses_at ON wa_statuses(at);
CREATE INDEX mail_outbox_kind ON mail_outbox(kind, state);
