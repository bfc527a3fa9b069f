-- Encryption at rest, retention and legal hold (issue 6 §1). 0006 is taken by templates.
--
-- document_keys: one random AES-256 data key per stored document (content address), wrapped
-- by a master key. Crypto-shredding sets wrapped_key to NULL and destroyed_at: without the
-- data key the ciphertext on disk is unreadable. The row itself stays, as the trace that the
-- key existed and when it was destroyed. stored_at is the last time these bytes were stored
-- (uploaded again, the existing copy is kept and stored_at moves): a key stored after the
-- latest deposit of the letters using it may serve a letter still to come, and is kept.
CREATE TABLE document_keys (
    sha256         TEXT PRIMARY KEY,
    master_key_id  TEXT NOT NULL,
    wrapped_key    BYTEA,
    created_at     BIGINT NOT NULL,
    stored_at      BIGINT NOT NULL,
    destroyed_at   BIGINT
);
CREATE INDEX document_keys_by_master ON document_keys (master_key_id);

-- Legal hold (blocks expiry while set) and the time the letter's content was destroyed.
ALTER TABLE letters ADD COLUMN legal_hold_since BIGINT;
ALTER TABLE letters ADD COLUMN content_destroyed_at BIGINT;
CREATE INDEX letters_by_retain_until ON letters (retain_until);
