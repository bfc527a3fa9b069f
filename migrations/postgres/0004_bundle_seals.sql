-- Seals of proof bundles. ECDSA signatures are randomised, so the seal over a bundle's
-- ASiCManifest is made once per manifest and kept: the same letter state then always gives a
-- byte-identical bundle. Insert-only, like evidence.
CREATE TABLE bundle_seals (
    letter_id              TEXT NOT NULL REFERENCES letters(id),
    asic_manifest_sha256   TEXT NOT NULL,
    seal                   BYTEA NOT NULL,
    created_at             BIGINT NOT NULL,
    PRIMARY KEY (letter_id, asic_manifest_sha256)
);

CREATE FUNCTION bundle_seals_are_append_only() RETURNS trigger AS $$
BEGIN
    RAISE EXCEPTION 'bundle seals are append-only';
END;
$$ LANGUAGE plpgsql;

CREATE TRIGGER bundle_seals_are_append_only
BEFORE UPDATE OR DELETE ON bundle_seals
FOR EACH ROW EXECUTE FUNCTION bundle_seals_are_append_only();
