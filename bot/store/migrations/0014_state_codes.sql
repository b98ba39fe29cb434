-- Ticket states as stable codes (issue 13). Rows stored the Spanish name people read
-- ("En atención"); they now store the code (en_atencion) and the name lives in the templates
-- (estado.state_<code>), so rewording a state is a change to locales/es, not to the data.
CREATE TEMP TABLE state_codes (name TEXT PRIMARY KEY, code TEXT NOT NULL);
INSERT INTO state_codes (name, code) VALUES
    ('Registrado', 'registrado'),
    ('En atención', 'en_atencion'),
    ('Observado', 'observado'),
    ('Atendido', 'atendido'),
    ('Cerrado', 'cerrado'),
    ('Anulado', 'anulado');

UPDATE tickets
   SET state = (SELECT code FROM state_codes WHERE name = tickets.state)
 WHERE state IN (SELECT name FROM state_codes);

UPDATE ticket_events
   SET from_state = (SELECT code FROM state_codes WHERE name = ticket_events.from_state)
 WHERE from_state IN (SELECT name FROM state_codes);

UPDATE ticket_events
   SET to_state = (SELECT code FROM state_codes WHERE name = ticket_events.to_state)
 WHERE to_state IN (SELECT name FROM state_codes);

-- A notice still in the outbox (held for WhatsApp's 24-hour window, or retrying) carries the
-- state it announces; it is rendered when delivered, so it gets the code too.
UPDATE outbox
   SET payload = json_set(
           payload, '$.data.state',
           (SELECT code FROM state_codes WHERE name = json_extract(outbox.payload, '$.data.state')))
 WHERE CASE WHEN json_valid(payload) THEN json_extract(payload, '$.data.state') END
       IN (SELECT name FROM state_codes);

DROP TABLE state_codes;
