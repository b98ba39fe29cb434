-- The retention purge (bot/store/retention.py) found two kinds of rows by reading the whole
-- table under the write lock: failed messages (the outbox holds every message of the last
-- 14 days) and unconfirmed verification codes (confirmed ones are kept, so that table grows
-- with people). Each is now found by a partial index, which holds only the rows it is about:
-- a turn writing a pending or sent message, or confirming a code, adds nothing to it.
CREATE INDEX outbox_failed_at ON outbox(created_at) WHERE state = 'failed';
CREATE INDEX verification_codes_unconfirmed ON verification_codes(expires_at)
    WHERE confirmed_at IS NULL;
