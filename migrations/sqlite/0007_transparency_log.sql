-- The transparency log (RFC 9162 Merkle tree) over every evidence record's SHA-256.
-- Leaves are appended in log order by one appender at a time; the tree is stored as its
-- perfect subtrees so appends and proofs are O(log n); tree heads are sealed and
-- timestamped. All three tables are insert-only, like evidence. (0005 and 0006 are taken by
-- batches and templates.)
CREATE TABLE log_leaves (
    position       BIGINT PRIMARY KEY,
    evidence_id    TEXT NOT NULL UNIQUE REFERENCES evidence(id),
    evidence_seq   BIGINT NOT NULL,
    record_sha256  TEXT NOT NULL,
    appended_at    BIGINT NOT NULL
);
CREATE INDEX log_leaves_by_seq ON log_leaves (evidence_seq);

CREATE TABLE log_nodes (
    level  INTEGER NOT NULL,
    idx    BIGINT NOT NULL,
    hash   BLOB NOT NULL,
    PRIMARY KEY (level, idx)
);

CREATE TABLE tree_heads (
    tree_size        BIGINT PRIMARY KEY,
    root_hash        TEXT NOT NULL,
    issued_at        BIGINT NOT NULL,
    head             BLOB NOT NULL,
    seal             BLOB NOT NULL,
    timestamp_token  BLOB NOT NULL
);
CREATE INDEX tree_heads_by_time ON tree_heads (issued_at);

CREATE TRIGGER log_leaves_are_append_only_update BEFORE UPDATE ON log_leaves
BEGIN
    SELECT RAISE(ABORT, 'the transparency log is append-only');
END;
CREATE TRIGGER log_leaves_are_append_only_delete BEFORE DELETE ON log_leaves
BEGIN
    SELECT RAISE(ABORT, 'the transparency log is append-only');
END;
CREATE TRIGGER log_nodes_are_append_only_update BEFORE UPDATE ON log_nodes
BEGIN
    SELECT RAISE(ABORT, 'the transparency log is append-only');
END;
CREATE TRIGGER log_nodes_are_append_only_delete BEFORE DELETE ON log_nodes
BEGIN
    SELECT RAISE(ABORT, 'the transparency log is append-only');
END;
CREATE TRIGGER tree_heads_are_append_only_update BEFORE UPDATE ON tree_heads
BEGIN
    SELECT RAISE(ABORT, 'the transparency log is append-only');
END;
CREATE TRIGGER tree_heads_are_append_only_delete BEFORE DELETE ON tree_heads
BEGIN
    SELECT RAISE(ABORT, 'the transparency log is append-only');
END;

-- Archive audits: each run's sealed and timestamped report, kept (insert-only).
CREATE TABLE audit_runs (
    id               TEXT PRIMARY KEY,
    started_at       BIGINT NOT NULL,
    finished_at      BIGINT NOT NULL,
    mode             TEXT NOT NULL,
    passed           INTEGER NOT NULL,
    failures         BIGINT NOT NULL,
    report           BLOB NOT NULL,
    seal             BLOB NOT NULL,
    timestamp_token  BLOB NOT NULL
);
CREATE INDEX audit_runs_by_time ON audit_runs (finished_at);
CREATE TRIGGER audit_runs_are_append_only_update BEFORE UPDATE ON audit_runs
BEGIN
    SELECT RAISE(ABORT, 'audit reports are append-only');
END;
CREATE TRIGGER audit_runs_are_append_only_delete BEFORE DELETE ON audit_runs
BEGIN
    SELECT RAISE(ABORT, 'audit reports are append-only');
END;
