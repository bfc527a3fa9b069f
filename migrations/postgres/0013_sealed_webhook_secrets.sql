-- Webhook signing secrets sealed under the master key: every delivery must be signed with
-- the secret itself, so it is wrapped (AES-256-GCM, bound to the webhook id), not hashed.
-- Once sealed, the clear `secret` column holds the empty string; rows of an earlier
-- version are sealed at start (issue 12 §4).
ALTER TABLE webhooks ADD COLUMN secret_key_id TEXT;
ALTER TABLE webhooks ADD COLUMN secret_sealed BYTEA;
