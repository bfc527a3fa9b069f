-- Installation secrets (the HMAC keys of link tokens, one-time codes, recipient sessions and
-- API keys) sealed under the master key (AES-256-GCM, see src/archive/keys.rs), so that a
-- copy of the database alone yields none of them (issue 12 §4). At start, any clear value
-- left in `service_secrets` by an earlier version is sealed here with the same key material
-- and erased from `service_secrets` in the same transaction: existing tokens and hashes
-- keep matching.
CREATE TABLE sealed_secrets (
    name           TEXT PRIMARY KEY,
    master_key_id  TEXT NOT NULL,
    sealed         BYTEA NOT NULL,
    created_at     BIGINT NOT NULL
);
