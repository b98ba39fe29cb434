-- Public entities by RUC (the name last confirmed by an officer).
CREATE TABLE entities (
    id          INTEGER PRIMARY KEY,
    ruc         TEXT NOT NULL UNIQUE,
    name        TEXT NOT NULL,
    updated_at  TEXT NOT NULL
);

-- Files by content: stored once under <data dir>/files/ by sha256, never by a sender's name.
CREATE TABLE files (
    sha256      TEXT PRIMARY KEY,
    size        INTEGER NOT NULL,
    mime        TEXT NOT NULL,
    kind        TEXT NOT NULL,
    created_at  TEXT NOT NULL
) WITHOUT ROWID;

-- Tickets: PTE-YYYY-NNNNNN, numbered per year of registration.
CREATE TABLE ticket_counters (
    year  INTEGER PRIMARY KEY,
    last  INTEGER NOT NULL
);

CREATE TABLE tickets (
    id                  INTEGER PRIMARY KEY,
    number              TEXT NOT NULL UNIQUE,
    type                TEXT NOT NULL,          -- accesos | consulta | perfiles
    state               TEXT NOT NULL,          -- Registrado, En atención, Observado, ...
    entity_id           INTEGER REFERENCES entities(id),
    person_id           INTEGER NOT NULL REFERENCES people(id),
    identity_id         INTEGER NOT NULL REFERENCES chat_identities(id),
    registered_at       TEXT NOT NULL,
    received_on         TEXT NOT NULL,          -- business day the term counts from
    due_on              TEXT NOT NULL,
    paused_days_left    INTEGER,                -- set while Observado
    flags               TEXT NOT NULL DEFAULT '[]',
    data                TEXT NOT NULL,          -- the request as confirmed (JSON)
    updated_at          TEXT NOT NULL
);
CREATE INDEX tickets_person ON tickets(person_id, id DESC);
CREATE INDEX tickets_state_due ON tickets(state, due_on);
CREATE INDEX tickets_entity ON tickets(entity_id);

CREATE TABLE ticket_events (
    id          INTEGER PRIMARY KEY,
    ticket_id   INTEGER NOT NULL REFERENCES tickets(id),
    at          TEXT NOT NULL,
    actor       TEXT NOT NULL,                  -- officer | staff:<id> | system
    from_state  TEXT,
    to_state    TEXT NOT NULL,
    message     TEXT
);
CREATE INDEX ticket_events_ticket ON ticket_events(ticket_id, id);

CREATE TABLE ticket_files (
    ticket_id   INTEGER NOT NULL REFERENCES tickets(id),
    sha256      TEXT NOT NULL REFERENCES files(sha256),
    role        TEXT NOT NULL,                  -- resolucion | formato | adjunto
    filename    TEXT NOT NULL,
    PRIMARY KEY (ticket_id, sha256, role)
) WITHOUT ROWID;

-- Email verification codes: only a salted hash is stored.
CREATE TABLE verification_codes (
    id           INTEGER PRIMARY KEY,
    person_id    INTEGER NOT NULL REFERENCES people(id),
    email        TEXT NOT NULL,
    code_hash    TEXT NOT NULL,
    salt         TEXT NOT NULL,
    created_at   TEXT NOT NULL,
    expires_at   TEXT NOT NULL,
    tries        INTEGER NOT NULL DEFAULT 0,
    confirmed_at TEXT
);
CREATE INDEX verification_codes_person ON verification_codes(person_id, email, id DESC);

-- Mail written in the transaction that decided it, sent afterwards and retried until it goes.
CREATE TABLE mail_outbox (
    id               INTEGER PRIMARY KEY,
    kind             TEXT NOT NULL,             -- code | request
    message          BLOB,                      -- RFC 5322 bytes; cleared once sent
    state            TEXT NOT NULL DEFAULT 'pending'
                     CHECK (state IN ('pending', 'sent', 'failed')),
    attempts         INTEGER NOT NULL DEFAULT 0,
    next_attempt_at  TEXT NOT NULL,
    last_error       TEXT,
    created_at       TEXT NOT NULL,
    sent_at          TEXT,
    reference        TEXT
);
CREATE INDEX mail_outbox_pending ON mail_outbox(id) WHERE state = 'pending';
