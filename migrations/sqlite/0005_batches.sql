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
    letters   BLOB NOT NULL
);

-- Per-row errors: `row` is the CSV line number (header = line 1) or the JSON array index.
CREATE TABLE batch_errors (
    id        INTEGER PRIMARY KEY AUTOINCREMENT,
    batch_id  TEXT NOT NULL REFERENCES batches(id),
    row       BIGINT NOT NULL,
    field     TEXT NOT NULL,
    message   TEXT NOT NULL
);
CREATE INDEX batch_errors_by_batch ON batch_errors (batch_id, row, id);

ALTER TABLE letters ADD COLUMN batch_id TEXT REFERENCES batches(id);
CREATE INDEX letters_by_batch ON letters (batch_id, state);

-- `batch.completed` deliveries concern a batch, not a letter nor an evidence record: the two
-- columns become optional and `batch_id` is added. SQLite cannot drop NOT NULL in place, so
-- the table is rebuilt with its rows, constraints and indexes.
CREATE TABLE webhook_deliveries_v2 (
    id                TEXT PRIMARY KEY,
    webhook_id        TEXT NOT NULL REFERENCES webhooks(id),
    tenant_id         TEXT NOT NULL REFERENCES tenants(id),
    event             TEXT NOT NULL,
    letter_id         TEXT REFERENCES letters(id),
    evidence_id       TEXT REFERENCES evidence(id),
    batch_id          TEXT REFERENCES batches(id),
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
    UNIQUE (webhook_id, evidence_id, event),
    UNIQUE (webhook_id, batch_id, event)
);
INSERT INTO webhook_deliveries_v2 (id, webhook_id, tenant_id, event, letter_id, evidence_id,
    payload, attempts, next_attempt_at, first_attempt_at, last_attempt_at, last_status,
    last_error, delivered_at, failed_at, created_at)
SELECT id, webhook_id, tenant_id, event, letter_id, evidence_id, payload, attempts,
    next_attempt_at, first_attempt_at, last_attempt_at, last_status, last_error,
    delivered_at, failed_at, created_at
FROM webhook_deliveries;
DROP TABLE webhook_deliveries;
ALTER TABLE webhook_deliveries_v2 RENAME TO webhook_deliveries;
CREATE INDEX webhook_deliveries_due ON webhook_deliveries (next_attempt_at)
    WHERE next_attempt_at IS NOT NULL;
CREATE INDEX webhook_deliveries_by_webhook ON webhook_deliveries (webhook_id, id);
