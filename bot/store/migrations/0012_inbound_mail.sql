-- Inbound mail (issue 15): the mailbox the assistant reads over IMAP.

-- One row per mail seen in the folder, written in the transaction that applied its effect:
-- (folder, uidvalidity, uid) is the exactly-once key. done_at is set once the server has
-- been told (seen, or moved to the review folder); a row still NULL there after a crash is
-- told again at the next start, without applying anything twice.
CREATE TABLE mail_inbox (
    id           INTEGER PRIMARY KEY,
    folder       TEXT NOT NULL,
    uidvalidity  INTEGER NOT NULL,
    uid          INTEGER NOT NULL,
    message_id   TEXT,
    sender       TEXT,                  -- the From address, lower case
    arrived_at   TEXT NOT NULL,         -- when the server received it (INTERNALDATE)
    ticket_id    INTEGER REFERENCES tickets(id),
    outcome      TEXT NOT NULL,         -- relayed | command | refused | desk_number | officer
                                        -- | duplicate | review
    reason       TEXT,                  -- why it went to review (a short code)
    processed_at TEXT NOT NULL,
    done_at      TEXT,
    UNIQUE (folder, uidvalidity, uid)
);
CREATE INDEX mail_inbox_message_id ON mail_inbox(message_id) WHERE message_id IS NOT NULL;
CREATE INDEX mail_inbox_sender ON mail_inbox(sender, arrived_at);
CREATE INDEX mail_inbox_not_done ON mail_inbox(folder, uidvalidity) WHERE done_at IS NULL;

-- The ticket (tickets.id) each mail we send is about: a reply names the mail in
-- In-Reply-To/References. No REFERENCES clause: a mail outlives nothing it points to, and
-- a column in a foreign key could not be dropped again.
ALTER TABLE mail_outbox ADD COLUMN ticket_id INTEGER;
CREATE INDEX mail_outbox_message_id ON mail_outbox(message_id) WHERE message_id IS NOT NULL;

-- The help desk's own ticketing system's number, from its automatic acknowledgement.
ALTER TABLE tickets ADD COLUMN desk_number TEXT;
