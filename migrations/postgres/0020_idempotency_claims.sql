-- Idempotency claims: the row of a key is written `pending` before the request is processed
-- (the primary key makes exactly one concurrent request win it), then completed with the
-- answer in the transaction that creates the resource, or deleted when the request fails.
-- Rows written before this migration are complete answers.
ALTER TABLE idempotency_keys ADD COLUMN route TEXT NOT NULL DEFAULT '';
ALTER TABLE idempotency_keys ADD COLUMN state TEXT NOT NULL DEFAULT 'done';
ALTER TABLE idempotency_keys ADD COLUMN claim TEXT NOT NULL DEFAULT '';
ALTER TABLE idempotency_keys ADD COLUMN headers TEXT NOT NULL DEFAULT '';
