-- PDF proofs with their PAdES signature (ETSI EN 319 142-1): a proof is signed once for the
-- bytes it renders to (rendering is deterministic) and served as stored afterwards, so that
-- downloads and bundles of the same letter state stay byte-identical. A new event changes
-- what a proof renders (the summary lists every event); it is then signed again and replaces
-- the row. The evidence records stay the primary proof; these rows can be signed again.
CREATE TABLE signed_proofs (
    letter_id TEXT NOT NULL REFERENCES letters (id),
    kind TEXT NOT NULL,
    rendered_sha256 TEXT NOT NULL,
    pdf BYTEA NOT NULL,
    signed_at BIGINT NOT NULL,
    PRIMARY KEY (letter_id, kind)
);
