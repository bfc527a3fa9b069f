-- Archive timestamp renewal in the spirit of RFC 4998 (Evidence Record Syntax): each renewal
-- is one Merkle tree over H(record digest ‖ the record's newest timestamp token), whose root
-- is timestamped (RFC 3161). `renewals` holds one row per tree and its token;
-- `renewal_leaves` holds, per record and generation, the canonical JSON renewal record (leaf
-- input, reduced hash-tree path, root). Both are insert-only, like evidence.
CREATE TABLE renewals (
    id                      BIGINT PRIMARY KEY,
    reason                  TEXT NOT NULL,
    created_at              BIGINT NOT NULL,
    tree_size               BIGINT NOT NULL,
    root_hash               TEXT NOT NULL,
    timestamp_token         BYTEA NOT NULL,
    tsa_certificate_sha256  TEXT NOT NULL,
    tsa_not_after           BIGINT NOT NULL
);

CREATE TABLE renewal_leaves (
    evidence_id   TEXT NOT NULL REFERENCES evidence(id),
    generation    INTEGER NOT NULL,
    renewal_id    BIGINT NOT NULL REFERENCES renewals(id),
    leaf_index    BIGINT NOT NULL,
    record        BYTEA NOT NULL,
    PRIMARY KEY (evidence_id, generation)
);
CREATE INDEX renewal_leaves_by_renewal ON renewal_leaves (renewal_id, leaf_index);

CREATE FUNCTION timestamp_renewals_are_append_only() RETURNS trigger AS $$
BEGIN
    RAISE EXCEPTION 'timestamp renewals are append-only';
END;
$$ LANGUAGE plpgsql;

CREATE TRIGGER renewals_are_append_only BEFORE UPDATE OR DELETE ON renewals
FOR EACH ROW EXECUTE FUNCTION timestamp_renewals_are_append_only();
CREATE TRIGGER renewal_leaves_are_append_only BEFORE UPDATE OR DELETE ON renewal_leaves
FOR EACH ROW EXECUTE FUNCTION timestamp_renewals_are_append_only();
CREATE TRIGGER renewals_are_not_truncated BEFORE TRUNCATE ON renewals
FOR EACH STATEMENT EXECUTE FUNCTION timestamp_renewals_are_append_only();
CREATE TRIGGER renewal_leaves_are_not_truncated BEFORE TRUNCATE ON renewal_leaves
FOR EACH STATEMENT EXECUTE FUNCTION timestamp_renewals_are_append_only();
