-- The transparency log (RFC 9162 Merkle tree) over every evidence record's SHA-256.
-- Leaves are appended in log order by one appender at a time (an advisory lock); the tree is
-- stored as its perfect subtrees so appends and proofs are O(log n); tree heads are sealed
-- and timestamped. All three tables are insert-only, like evidence. (0005 and 0006 are taken
-- by batches and templates.)
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
    hash   BYTEA NOT NULL,
    PRIMARY KEY (level, idx)
);

CREATE TABLE tree_heads (
    tree_size        BIGINT PRIMARY KEY,
    root_hash        TEXT NOT NULL,
    issued_at        BIGINT NOT NULL,
    head             BYTEA NOT NULL,
    seal             BYTEA NOT NULL,
    timestamp_token  BYTEA NOT NULL
);
CREATE INDEX tree_heads_by_time ON tree_heads (issued_at);

CREATE FUNCTION transparency_log_is_append_only() RETURNS trigger AS $$
BEGIN
    RAISE EXCEPTION 'the transparency log is append-only';
END;
$$ LANGUAGE plpgsql;

CREATE TRIGGER log_leaves_are_append_only BEFORE UPDATE OR DELETE ON log_leaves
FOR EACH ROW EXECUTE FUNCTION transparency_log_is_append_only();
CREATE TRIGGER log_nodes_are_append_only BEFORE UPDATE OR DELETE ON log_nodes
FOR EACH ROW EXECUTE FUNCTION transparency_log_is_append_only();
CREATE TRIGGER tree_heads_are_append_only BEFORE UPDATE OR DELETE ON tree_heads
FOR EACH ROW EXECUTE FUNCTION transparency_log_is_append_only();
CREATE TRIGGER log_leaves_are_not_truncated BEFORE TRUNCATE ON log_leaves
FOR EACH STATEMENT EXECUTE FUNCTION transparency_log_is_append_only();
CREATE TRIGGER log_nodes_are_not_truncated BEFORE TRUNCATE ON log_nodes
FOR EACH STATEMENT EXECUTE FUNCTION transparency_log_is_append_only();
CREATE TRIGGER tree_heads_are_not_truncated BEFORE TRUNCATE ON tree_heads
FOR EACH STATEMENT EXECUTE FUNCTION transparency_log_is_append_only();

-- Archive audits: each run's sealed and timestamped report, kept (insert-only).
CREATE TABLE audit_runs (
    id               TEXT PRIMARY KEY,
    started_at       BIGINT NOT NULL,
    finished_at      BIGINT NOT NULL,
    mode             TEXT NOT NULL,
    passed           INTEGER NOT NULL,
    failures         BIGINT NOT NULL,
    report           BYTEA NOT NULL,
    seal             BYTEA NOT NULL,
    timestamp_token  BYTEA NOT NULL
);
CREATE INDEX audit_runs_by_time ON audit_runs (finished_at);
CREATE TRIGGER audit_runs_are_append_only BEFORE UPDATE OR DELETE ON audit_runs
FOR EACH ROW EXECUTE FUNCTION transparency_log_is_append_only();
