-- People and how they reach us. A person may have several chat identities (Telegram, WhatsApp).
CREATE TABLE people (
    id          INTEGER PRIMARY KEY,
    created_at  TEXT NOT NULL,
    deleted_at  TEXT
);

CREATE TABLE chat_identities (
    id           INTEGER PRIMARY KEY,
    channel      TEXT NOT NULL,
    external_id  TEXT NOT NULL,
    person_id    INTEGER NOT NULL REFERENCES people(id),
    created_at   TEXT NOT NULL,
    UNIQUE (channel, external_id)
);
CREATE INDEX chat_identities_person ON chat_identities(person_id);

-- Every decision on the data-protection notice, kept (accepted or declined), newest wins.
CREATE TABLE consents (
    id              INTEGER PRIMARY KEY,
    person_id       INTEGER NOT NULL REFERENCES people(id),
    notice_version  TEXT NOT NULL,
    accepted        INTEGER NOT NULL CHECK (accepted IN (0, 1)),
    at              TEXT NOT NULL,
    channel         TEXT NOT NULL
);
CREATE INDEX consents_person ON consents(person_id, id);

-- Where each chat stands: flow, step and answers as JSON.
CREATE TABLE conversations (
    identity_id  INTEGER PRIMARY KEY REFERENCES chat_identities(id),
    state        TEXT NOT NULL,
    version      INTEGER NOT NULL,
    updated_at   TEXT NOT NULL
);

-- Update ids already processed: a redelivered update changes nothing.
CREATE TABLE processed_events (
    channel   TEXT NOT NULL,
    event_id  TEXT NOT NULL,
    at        TEXT NOT NULL,
    PRIMARY KEY (channel, event_id)
) WITHOUT ROWID;
CREATE INDEX processed_events_at ON processed_events(at);

-- Every message to a chat, written in the transaction that decided it, delivered afterwards.
CREATE TABLE outbox (
    id               INTEGER PRIMARY KEY,
    channel          TEXT NOT NULL,
    chat_id          TEXT NOT NULL,
    payload          TEXT NOT NULL,
    bulk             INTEGER NOT NULL DEFAULT 0,
    state            TEXT NOT NULL DEFAULT 'pending'
                     CHECK (state IN ('pending', 'sent', 'failed')),
    attempts         INTEGER NOT NULL DEFAULT 0,
    next_attempt_at  TEXT,
    last_error       TEXT,
    created_at       TEXT NOT NULL,
    sent_at          TEXT,
    external_ref     TEXT
);
CREATE INDEX outbox_pending ON outbox(channel, id) WHERE state = 'pending';
CREATE INDEX outbox_chat ON outbox(channel, chat_id, id);
