-- Outside witnesses of the transparency log (issue 6 §2): every signed tree head is pushed to
-- each configured witness (an email address or a webhook URL). The deliveries are created in
-- the transaction that stores the head (a transactional outbox), then sent by workers that
-- lease them, retry with backoff, and send one witness's heads in tree-size order.
-- Times are Unix microseconds (UTC) in BIGINT columns, as in 0001.
--
-- `witness` is `mailto:<address>` or the webhook URL; its signing secret stays in the
-- configuration, never in the database. The row is the delivery log: attempts, the last
-- HTTP status or SMTP reply, the last error, and when it was delivered or given up.
CREATE TABLE witness_deliveries (
    id                TEXT PRIMARY KEY,
    tree_size         BIGINT NOT NULL REFERENCES tree_heads(tree_size),
    kind              TEXT NOT NULL CHECK (kind IN ('email', 'webhook')),
    witness           TEXT NOT NULL,
    attempts          BIGINT NOT NULL DEFAULT 0,
    next_attempt_at   BIGINT,
    first_attempt_at  BIGINT,
    last_attempt_at   BIGINT,
    last_status       BIGINT,
    last_reply        TEXT,
    last_error        TEXT,
    delivered_at      BIGINT,
    failed_at         BIGINT,
    created_at        BIGINT NOT NULL,
    UNIQUE (witness, tree_size)
);
CREATE INDEX witness_deliveries_due ON witness_deliveries (next_attempt_at)
    WHERE next_attempt_at IS NOT NULL;
CREATE INDEX witness_deliveries_by_witness ON witness_deliveries (witness, tree_size);

-- Evidence retention (issue 6 §1, [archive] evidence_retention): evidence records are kept
-- for ever (each is a leaf of the log), but once the configured period after retain_until has
-- passed, the copies of the parties' personal data outside the sealed records (the letter
-- row's sender and recipient) are blanked; this is when.
ALTER TABLE letters ADD COLUMN personal_data_redacted_at BIGINT;

-- A batch may be cancelled (POST /v1/batches/{id}/cancel): rows not yet deposited never are.
ALTER TABLE batches ADD COLUMN cancelled_at BIGINT;
