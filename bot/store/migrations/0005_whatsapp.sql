-- WhatsApp Cloud API: the 24-hour customer-service window of each chat, notices held until
-- it reopens, and the delivery statuses Meta reports for the messages we sent.

-- One row per WhatsApp number that ever wrote (or that we tried to reach).
-- The window is open while last_inbound_at is under 24 h old, unless Meta said it closed
-- (error 131047) after that message. template_sent_at: the re-engagement template of the
-- current closure (one per closure, cleared when the officer writes).
CREATE TABLE wa_chats (
    wa_id             TEXT PRIMARY KEY,
    last_inbound_at   TEXT,
    closed_at         TEXT,
    template_sent_at  TEXT
) WITHOUT ROWID;

-- Outbox rows that found the window closed: delivered, in order, when the officer writes.
CREATE TABLE wa_held (
    outbox_id  INTEGER PRIMARY KEY REFERENCES outbox(id),
    wa_id      TEXT NOT NULL,
    held_at    TEXT NOT NULL
);
CREATE INDEX wa_held_chat ON wa_held(wa_id, outbox_id);

-- sent / delivered / read / failed, as Meta's status callbacks report them (each once).
CREATE TABLE wa_statuses (
    wamid        TEXT NOT NULL,
    status       TEXT NOT NULL,
    at           TEXT NOT NULL,
    error_code   INTEGER,
    error_title  TEXT,
    PRIMARY KEY (wamid, status)
) WITHOUT ROWID;

-- A status callback names the message by its wamid, stored as the outbox row's external_ref.
CREATE INDEX outbox_external_ref ON outbox(channel, external_ref) WHERE external_ref IS NOT NULL;
