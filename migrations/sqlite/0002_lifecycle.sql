-- Lifecycle: notification, recipient identification, decision, expiry; transactional outbox.

-- The letter's chain head: every transition names the head it extends, so two concurrent
-- transitions cannot both chain onto the same record (optimistic concurrency).
ALTER TABLE letters ADD COLUMN last_evidence_sha256 TEXT;
ALTER TABLE letters ADD COLUMN notified_at BIGINT;
-- End of the acceptance window (exclusive): 00:00 Europe/Paris after the 15th day (CPCE R.53-3).
ALTER TABLE letters ADD COLUMN deadline BIGINT;
ALTER TABLE letters ADD COLUMN decided_at BIGINT;
ALTER TABLE letters ADD COLUMN content_handed_over_at BIGINT;
-- SHA-256 of the recipient link token; the token itself is only in the notification mail.
ALTER TABLE letters ADD COLUMN recipient_token_sha256 TEXT;
ALTER TABLE letters ADD COLUMN otp_failures BIGINT NOT NULL DEFAULT 0;
ALTER TABLE letters ADD COLUMN otp_locked_until BIGINT;

UPDATE letters SET last_evidence_sha256 = (
    SELECT e.record_sha256 FROM evidence e WHERE e.letter_id = letters.id ORDER BY e.seq DESC LIMIT 1
);

CREATE UNIQUE INDEX letters_by_recipient_token ON letters (recipient_token_sha256);
CREATE INDEX letters_by_deadline ON letters (state, deadline);

-- Work that leaves the process (mails, webhook events), written in the same transaction as the
-- state change that causes it and delivered at least once by workers.
CREATE TABLE outbox (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    kind        TEXT NOT NULL,
    letter_id   TEXT,
    payload     TEXT NOT NULL,
    run_after   BIGINT NOT NULL,
    attempts    BIGINT NOT NULL DEFAULT 0,
    last_error  TEXT,
    created_at  BIGINT NOT NULL,
    done_at     BIGINT
);
CREATE INDEX outbox_due ON outbox (done_at, run_after);

-- One-time codes sent to the recipient (stored as HMAC, never in clear).
CREATE TABLE otp_codes (
    id           TEXT PRIMARY KEY,
    letter_id    TEXT NOT NULL REFERENCES letters(id),
    code_hmac    TEXT NOT NULL,
    created_at   BIGINT NOT NULL,
    expires_at   BIGINT NOT NULL,
    used_at      BIGINT
);
CREATE INDEX otp_codes_by_letter ON otp_codes (letter_id, created_at);

-- Recipient sessions opened by a successful identification.
CREATE TABLE recipient_sessions (
    token_sha256     TEXT PRIMARY KEY,
    letter_id        TEXT NOT NULL REFERENCES letters(id),
    method           TEXT NOT NULL,
    assurance_level  TEXT NOT NULL,
    created_at       BIGINT NOT NULL,
    expires_at       BIGINT NOT NULL
);
