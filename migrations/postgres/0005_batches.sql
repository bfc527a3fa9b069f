-- Batches: many letters deposited from one JSON or CSV request (DESIGN §7, POST /v1/batches).
-- Times are Unix microseconds (UTC) in BIGINT columns, as in 0001.

-- One batch. Each committed chunk moves `next_row`, `deposited` and `rejected` in the
-- transaction that writes its letters, evidence and jobs.
CREATE TABLE batches (
    id               TEXT PRIMARY KEY,
    tenant_id        TEXT NOT NULL REFERENCES tenants(id),
    api_key_id       TEXT NOT NULL,
    state            TEXT NOT NULL,
    mode             TEXT NOT NULL,
    source           TEXT NOT NULL,
    total            BIGINT NOT NULL,
    valid            BIGINT NOT NULL,
    deposited        BIGINT NOT NULL DEFAULT 0,
    rejected         BIGINT NOT NULL DEFAULT 0,
    next_row         BIGINT NOT NULL DEFAULT 0,
    idempotency_key  TEXT,
    lease_until      BIGINT,
    failure          TEXT,
    created_at       BIGINT NOT NULL,
    updated_at       BIGINT NOT NULL,
    completed_at     BIGINT
);
CREATE INDEX batches_by_tenant ON batches (tenant_id, id);
CREATE INDEX batches_unfinished ON batches (state, lease_until);

-- The valid rows of a batch as the exact single-letter bodies they became
-- (`[{"row":N,"letter":{…}},…]`), so an interrupted deposit resumes from `next_row` with the
-- very same input whatever the original format. Apart from `batches`, whose row is updated at
-- every chunk: SQLite rewrites a whole row on UPDATE, megabytes of rows included.
CREATE TABLE batch_rows (
    batch_id  TEXT PRIMARY KEY REFERENCES batches(id),
    letters   BYTEA NOT NULL
);

-- Per-row errors: `row` is the CSV line number (header = line 1) or the JSON array index.
CREATE TABLE batch_errors (
    id        BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    batch_id  TEXT NOT NULL REFERENCES batches(id),
    row       BIGINT NOT NULL,
    field     TEXT NOT NULL,
    message   TEXT NOT NULL
);
CREATE INDEX batch_errors_by_batch ON batch_errors (batch_id, row, id);

ALTER TABLE letters ADD COLUMN batch_id TEXT REFERENCES batches(id);
CREATE INDEX letters_by_batch ON letters (batch_id, state);

-- `batch.completed` deliveries concern a batch, not a letter nor an evidence record.
ALTER TABLE webhook_deliveries ALTER COLUMN letter_id DROP NOT NULL;
ALTER TABLE webhook_deliveries ALTER COLUMN evidence_id DROP NOT NULL;
ALTER TABLE webhook_deliveries ADD COLUMN batch_id TEXT REFERENCES batches(id);
ALTER TABLE webhook_deliveries ADD CONSTRAINT webhook_deliveries_batch_event
    UNIQUE (webhook_id, batch_id, event);
