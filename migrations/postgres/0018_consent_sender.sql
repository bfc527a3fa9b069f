-- The sender a consumer consented to receive electronic registered letters from (CPCE L.100).
-- When an agency deposits a letter for a creditor, the consent must name that agency: the
-- consent a consumer gave the creditor does not extend to the agency. NULL on consents
-- recorded before this column, and on those that name no one (the account itself sends).
ALTER TABLE consents ADD COLUMN sender TEXT;

-- The sender is part of the consent: like every other field, only a withdrawal changes a row.
CREATE OR REPLACE FUNCTION consents_change_only_by_withdrawal() RETURNS trigger AS $$
BEGIN
    IF OLD.withdrawn_at IS NOT NULL
        OR NEW.withdrawn_at IS NULL
        OR NEW.id IS DISTINCT FROM OLD.id
        OR NEW.tenant_id IS DISTINCT FROM OLD.tenant_id
        OR NEW.email IS DISTINCT FROM OLD.email
        OR NEW.name IS DISTINCT FROM OLD.name
        OR NEW.given_at IS DISTINCT FROM OLD.given_at
        OR NEW.method IS DISTINCT FROM OLD.method
        OR NEW.document_id IS DISTINCT FROM OLD.document_id
        OR NEW.created_at IS DISTINCT FROM OLD.created_at
        OR NEW.sender IS DISTINCT FROM OLD.sender
    THEN
        RAISE EXCEPTION 'a consent changes only once, when it is withdrawn';
    END IF;
    RETURN NEW;
END;
$$ LANGUAGE plpgsql;
