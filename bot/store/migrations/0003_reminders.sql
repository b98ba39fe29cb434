-- When a conversation was last reminded of its draft; any new message clears it.
ALTER TABLE conversations ADD COLUMN reminded_at TEXT;
