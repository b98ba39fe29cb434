-- The Message-ID of each mail, fixed when its row is written: a mail sent again after a crash
-- (the server took it, the row was not marked sent yet) is the same message, and the
-- receiving side can drop the copy. Rows written before this migration keep theirs in the
-- stored message only.
ALTER TABLE mail_outbox ADD COLUMN message_id TEXT;
