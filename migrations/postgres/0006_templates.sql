-- Collection letter templates of a tenant: custom wording, with placeholders, for a relance
-- or a mise en demeure (src/collection). The mandatory mentions are always added and checked
-- on top of the wording when a letter is composed. A template is immutable once recorded:
-- a letter's evidence may cite it, so new wording is a new template.
-- Times are Unix microseconds (UTC) in BIGINT columns, as in 0001.
CREATE TABLE templates (
    id          TEXT PRIMARY KEY,
    tenant_id   TEXT NOT NULL REFERENCES tenants(id),
    name        TEXT NOT NULL,
    kind        TEXT NOT NULL CHECK (kind IN ('relance', 'mise_en_demeure')),
    wording     TEXT NOT NULL,
    created_at  BIGINT NOT NULL
);
CREATE INDEX templates_by_tenant ON templates (tenant_id, id);

CREATE FUNCTION templates_are_immutable() RETURNS trigger AS $$
BEGIN
    RAISE EXCEPTION 'templates are immutable: record a new one';
END;
$$ LANGUAGE plpgsql;

CREATE TRIGGER templates_are_immutable
BEFORE UPDATE OR DELETE ON templates
FOR EACH ROW EXECUTE FUNCTION templates_are_immutable();

CREATE TRIGGER templates_are_never_truncated
BEFORE TRUNCATE ON templates
FOR EACH STATEMENT EXECUTE FUNCTION templates_are_immutable();
