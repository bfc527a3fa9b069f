-- Consumer consents (CPCE L.100) and sender webhooks with their delivery log.
-- Times are Unix microseconds (UTC) in BIGINT columns, as in 0001.

-- CPCE L.100: a consumer must have consented beforehand to receive electronic registered
-- letters from the sender. A consent is recorded once; withdrawing it fills `withdrawn_at`
-- and `withdrawal_reason` and nothing else, so the history stays provable.
CREATE TABLE consents (
    id                 TEXT PRIMARY KEY,
    tenant_id          TEXT NOT NULL REFERENCES tenants(id),
    email              TEXT NOT NULL,
    name               TEXT NOT NULL,
    given_at           BIGINT NOT NULL,
    method             TEXT NOT NULL,
    document_id        TEXT REFERENCES documents(id),
    created_at         BIGINT NOT NULL,
    withdrawn_at       BIGINT,
    withdrawal_reason  TEXT
);
CREATE INDEX consents_by_email ON consents (tenant_id, email, id);
CREATE INDEX consents_by_tenant ON consents (tenant_id, id);

CREATE TRIGGER consents_are_never_deleted BEFORE DELETE ON consents
BEGIN
    SELECT RAISE(ABORT, 'consents are never deleted: withdraw them');
END;

CREATE TRIGGER consents_change_only_by_withdrawal BEFORE UPDATE ON consents
WHEN OLD.withdrawn_at IS NOT NULL
    OR NEW.withdrawn_at IS NULL
    OR NEW.id IS NOT OLD.id
    OR NEW.tenant_id IS NOT OLD.tenant_id
    OR NEW.email IS NOT OLD.email
    OR NEW.name IS NOT OLD.name
    OR NEW.given_at IS NOT OLD.given_at
    OR NEW.method IS NOT OLD.method
    OR NEW.document_id IS NOT OLD.document_id
    OR NEW.created_at IS NOT OLD.created_at
BEGIN
    SELECT RAISE(ABORT, 'a consent changes only once, when it is withdrawn');
END;

-- Webhooks of a tenant. The secret is kept because every delivery is signed with it
-- (HMAC-SHA256); it is never shown again after creation. Deleting is soft (`deleted_at`).
CREATE TABLE webhooks (
    id          TEXT PRIMARY KEY,
    tenant_id   TEXT NOT NULL REFERENCES tenants(id),
    url         TEXT NOT NULL,
    secret      TEXT NOT NULL,
    events      TEXT NOT NULL,
    created_at  BIGINT NOT NULL,
    deleted_at  BIGINT
);
CREATE INDEX webhooks_by_tenant ON webhooks (tenant_id, id);

-- One row per (webhook, evidence, event): fanning an event out twice creates nothing new.
-- A delivery is pending while `next_attempt_at` is set; it ends delivered (`delivered_at`)
-- or given up (`failed_at`). `payload` holds the exact bytes sent, so every retry is identical.
CREATE TABLE webhook_deliveries (
    id                TEXT PRIMARY KEY,
    webhook_id        TEXT NOT NULL REFERENCES webhooks(id),
    tenant_id         TEXT NOT NULL REFERENCES tenants(id),
    event             TEXT NOT NULL,
    letter_id         TEXT NOT NULL REFERENCES letters(id),
    evidence_id       TEXT NOT NULL REFERENCES evidence(id),
    payload           BLOB NOT NULL,
    attempts          BIGINT NOT NULL DEFAULT 0,
    next_attempt_at   BIGINT,
    first_attempt_at  BIGINT,
    last_attempt_at   BIGINT,
    last_status       BIGINT,
    last_error        TEXT,
    delivered_at      BIGINT,
    failed_at         BIGINT,
    created_at        BIGINT NOT NULL,
    UNIQUE (webhook_id, evidence_id, event)
);
CREATE INDEX webhook_deliveries_due ON webhook_deliveries (next_attempt_at)
    WHERE next_attempt_at IS NOT NULL;
CREATE INDEX webhook_deliveries_by_webhook ON webhook_deliveries (webhook_id, id);
