-- Migration 0014 gave the ticket state of a queued message its code only at '$.data.state'.
-- A message still in the outbox can carry states deeper down, rendered when it is delivered:
-- the history of a ticket's detail or card ('$.data.events[i].state'), a list of tickets
-- ('$.data.tickets[i].state'), a ticket button's data ('$.choices[r][c][2].state'). Every
-- value of a "state", "from_state" or "to_state" key that is still a state's Spanish name
-- becomes its code, wherever it is in the payload, so templates read codes only.
CREATE TEMP TABLE state_codes (name TEXT PRIMARY KEY, code TEXT NOT NULL);
INSERT INTO state_codes (name, code) VALUES
    ('Registrado', 'registrado'),
    ('En atención', 'en_atencion'),
    ('Observado', 'observado'),
    ('Atendido', 'atendido'),
    ('Cerrado', 'cerrado'),
    ('Anulado', 'anulado');

-- Each old value found: its row, its path, its code, numbered within the row.
CREATE TEMP TABLE old_states AS
SELECT outbox.id AS id,
       row_number() OVER (PARTITION BY outbox.id ORDER BY node.id) AS n,
       node.fullkey AS path,
       state_codes.code AS code
  FROM outbox,
       json_tree(CASE WHEN json_valid(outbox.payload) THEN outbox.payload ELSE '{}' END) AS node
  JOIN state_codes ON state_codes.name = node.atom
 WHERE node.type = 'text'
   AND node.key IN ('state', 'from_state', 'to_state');

-- One value after the other, each row's payload rewritten once with all of them.
WITH RECURSIVE rewritten(id, n, payload) AS (
    SELECT id, 0, payload FROM outbox WHERE id IN (SELECT id FROM old_states)
    UNION ALL
    SELECT rewritten.id, rewritten.n + 1,
           json_set(rewritten.payload, old_states.path, old_states.code)
      FROM rewritten
      JOIN old_states ON old_states.id = rewritten.id AND old_states.n = rewritten.n + 1
)
UPDATE outbox
   SET payload = (SELECT payload FROM rewritten WHERE rewritten.id = outbox.id
                   ORDER BY n DESC LIMIT 1)
 WHERE id IN (SELECT id FROM old_states);

DROP TABLE old_states;
DROP TABLE state_codes;
