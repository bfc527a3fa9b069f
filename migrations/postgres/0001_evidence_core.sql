-- Evidence core: tenants, API keys, documents, letters, evidence (append-only), idempotency.
-- Times are Unix microseconds (UTC) in BIGINT columns so both backends share one schema shape.

CREATE TABLE tenants (
    id          TEXT PRIMARY KEY,
    name        TEXT NOT NULL UNIQUE,
    created_at  BIGINT NOT NULL
);

CREATE TABLE api_keys (
    id          TEXT PRIMARY KEY,
    tenant_id   TEXT NOT NULL REFERENCES tenants(id),
    key_hmac    BYTEA NOT NULL UNIQUE,
    created_at  BIGINT NOT NULL,
    revoked_at  BIGINT
);

-- Installation-wide secrets (e.g. the API-key HMAC key), generated once.
CREATE TABLE service_secrets (
    name        TEXT PRIMARY KEY,
    value       BYTEA NOT NULL,
    created_at  BIGINT NOT NULL
);

-- Monotonic counters (e.g. the TSA serial-number epoch reserved at each start).
CREATE TABLE counters (
    name        TEXT PRIMARY KEY,
    value       BIGINT NOT NULL
);

CREATE TABLE documents (
    id          TEXT PRIMARY KEY,
    tenant_id   TEXT NOT NULL REFERENCES tenants(id),
    sha256      TEXT NOT NULL,
    size        BIGINT NOT NULL,
    media_type  TEXT NOT NULL,
    filename    TEXT NOT NULL,
    created_at  BIGINT NOT NULL,
    UNIQUE (tenant_id, sha256)
);

CREATE TABLE letters (
    id            TEXT PRIMARY KEY,
    tenant_id     TEXT NOT NULL REFERENCES tenants(id),
    state         TEXT NOT NULL,
    reference     TEXT,
    sender        TEXT NOT NULL,
    recipient     TEXT NOT NULL,
    deposited_at  BIGINT NOT NULL,
    retain_until  BIGINT NOT NULL,
    updated_at    BIGINT NOT NULL
);
CREATE INDEX letters_by_tenant ON letters (tenant_id, id);
CREATE INDEX letters_by_reference ON letters (tenant_id, reference, id);
CREATE INDEX letters_by_state ON letters (tenant_id, state, id);

CREATE TABLE letter_documents (
    letter_id    TEXT NOT NULL REFERENCES letters(id),
    position     BIGINT NOT NULL,
    document_id  TEXT NOT NULL REFERENCES documents(id),
    PRIMARY KEY (letter_id, position)
);

-- Evidence is append-only: `seq` is the service-wide sequence (an identity column never reuses a
-- value), and the triggers below refuse any UPDATE or DELETE whatever the caller.
CREATE TABLE evidence (
    seq              BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    id               TEXT NOT NULL UNIQUE,
    letter_id        TEXT NOT NULL REFERENCES letters(id),
    event            TEXT NOT NULL,
    event_time       BIGINT NOT NULL,
    record           BYTEA NOT NULL,
    record_sha256    TEXT NOT NULL,
    seal             BYTEA NOT NULL,
    timestamp_token  BYTEA NOT NULL,
    created_at       BIGINT NOT NULL
);
CREATE INDEX evidence_by_letter ON evidence (letter_id, seq);

CREATE FUNCTION evidence_is_append_only() RETURNS trigger AS $$
BEGIN
    RAISE EXCEPTION 'evidence is append-only';
END;
$$ LANGUAGE plpgsql;

CREATE TRIGGER evidence_is_append_only
BEFORE UPDATE OR DELETE ON evidence
FOR EACH ROW EXECUTE FUNCTION evidence_is_append_only();

CREATE TRIGGER evidence_is_append_only_truncate
BEFORE TRUNCATE ON evidence
FOR EACH STATEMENT EXECUTE FUNCTION evidence_is_append_only();

CREATE TABLE idempotency_keys (
    tenant_id       TEXT NOT NULL REFERENCES tenants(id),
    key             TEXT NOT NULL,
    request_sha256  TEXT NOT NULL,
    status          BIGINT NOT NULL,
    response        BYTEA NOT NULL,
    created_at      BIGINT NOT NULL,
    PRIMARY KEY (tenant_id, key)
);
