-- Webhook secret rotation (Standard Webhooks): after a rotation the previous secret, sealed
-- as the current one is (AES-256-GCM under the master key, bound to the webhook id), still
-- signs deliveries until previous_secret_until (Unix µs), so that receivers can switch
-- without missing one. A later rotation replaces it: at most two secrets are valid.
ALTER TABLE webhooks ADD COLUMN previous_secret_key_id TEXT;
ALTER TABLE webhooks ADD COLUMN previous_secret_sealed BYTEA;
ALTER TABLE webhooks ADD COLUMN previous_secret_until BIGINT;
ALTER TABLE webhooks ADD COLUMN secret_rotated_at BIGINT;
