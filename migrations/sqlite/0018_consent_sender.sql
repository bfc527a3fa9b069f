-- The sender a consumer consented to receive electronic registered letters from (CPCE L.100).
-- When an agency deposits a letter for a creditor, the consent must name that agency: the
-- consent a consumer gave the creditor does not extend to the agency. NULL on consents
-- recorded before this column, and on those that name no one (the account itself sends).
ALTER TABLE consents ADD COLUMN sender TEXT;

-- The sender is part of the consent: like every other field, only a withdrawal changes a row.
DROP TRIGGER consents_change_only_by_withdrawal;
CREATE TRIGGER consents_change_only_by_withdrawal BEFORE UPDATE ON consents
WHEN OLD.withdrawn_at IS NOT NULL
    OR NEW.withdrawn_at IS NULL
    OR NEW.id IS NOT OLD.id
    OR NEW.tenant_id IS NOT OLD.tenant_id
    OR NEW.email IS NOT OLD.email
    OR NEW.name IS NOT OLD.name
    OR NEW.given_at IS NOT OLD.given_at
    OR NEW.method IS NOT OLD.method
    OR NEW.document_id IS NOT OLD.document_id
    OR NEW.created_at IS NOT OLD.created_at
    OR NEW.sender IS NOT OLD.sender
BEGIN
    SELECT RAISE(ABORT, 'a consent changes only once, when it is withdrawn');
END;
