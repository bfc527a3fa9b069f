-- A notification's message is built once, before its first hand-over, and kept with its
-- outbox job: a retry after a crash (or a lost connection) sends these same bytes, so the
-- NotificationForAcceptance evidence, which carries their Message-ID and SHA-256, covers
-- every copy the recipient may have received (issue 12 §0). The bytes hold the recipient
-- link in clear, so they are sealed under the master key (AES-256-GCM, bound to the job
-- id), as webhook secrets are (issue 12 §4).
ALTER TABLE outbox ADD COLUMN mail_message_id TEXT;
ALTER TABLE outbox ADD COLUMN mail_prepared_at BIGINT;
ALTER TABLE outbox ADD COLUMN mail_key_id TEXT;
ALTER TABLE outbox ADD COLUMN mail_sealed BYTEA;
