-- The entity's name as the ticket's officer sent it. entities.name is only the RUC's last
-- known name (a suggestion for the next request): another officer typing it differently must
-- not change what an earlier ticket's card, mail or CSV row shows.
ALTER TABLE tickets ADD COLUMN entity_name TEXT;
-- Existing tickets: the name kept in the confirmed request, else the RUC's current name.
UPDATE tickets SET entity_name = COALESCE(
    json_extract(data, '$.entity_name'),
    (SELECT e.name FROM entities e WHERE e.id = tickets.entity_id)
);
