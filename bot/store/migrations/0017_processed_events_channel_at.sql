-- The retention purge deletes processed events by channel and age (Telegram 2 days,
-- WhatsApp 8, others 2). The primary key (channel, event_id) found a channel's events but
-- not their age, so each purge read every event of the channel's window under the write
-- lock; processed_events_at found the age but not the channel. One index on both replaces
-- it: every update still writes the same number of b-trees (the table and one index).
-- Nothing else reads processed_events by age alone (a redelivery is found by the key).
DROP INDEX processed_events_at;
CREATE INDEX processed_events_channel_at ON processed_events(channel, at);
