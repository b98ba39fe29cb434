-- The help desk at work: who took a ticket, what was observed, what was said.
ALTER TABLE tickets ADD COLUMN assignee_channel TEXT;      -- the staff member who took it
ALTER TABLE tickets ADD COLUMN assignee_chat TEXT;
ALTER TABLE tickets ADD COLUMN observed_part TEXT;         -- resolucion | responsable | perfiles | otro
ALTER TABLE tickets ADD COLUMN observed_at TEXT;
ALTER TABLE tickets ADD COLUMN observed_reminded_at TEXT;  -- the officer was reminded once
ALTER TABLE tickets ADD COLUMN attended_at TEXT;           -- auto-close counts from here

-- estado: a state change; staff / oficial: a message relayed between them.
ALTER TABLE ticket_events ADD COLUMN kind TEXT NOT NULL DEFAULT 'estado';

-- A notification about a ticket: staff see on the card when it could not be delivered.
ALTER TABLE outbox ADD COLUMN ticket_id INTEGER REFERENCES tickets(id);
CREATE INDEX outbox_ticket ON outbox(ticket_id) WHERE ticket_id IS NOT NULL;

-- Scheduled jobs that must run once per key (a day's digest) whatever the restarts.
CREATE TABLE job_runs (
    job      TEXT NOT NULL,
    run_key  TEXT NOT NULL,
    at       TEXT NOT NULL,
    PRIMARY KEY (job, run_key)
) WITHOUT ROWID;
