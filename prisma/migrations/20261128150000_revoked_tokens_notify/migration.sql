-- Every instance keeps the revoked JWT ids in memory (src/oidc/revocations.ts).
-- Announce each new revocation on the change feed from the database itself,
-- so that no writer (another version, a script, psql) can skip the notice.
CREATE FUNCTION gatehouse_notify_revocation() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
  PERFORM pg_notify('gatehouse_changes', json_build_object('kind', 'revocation', 'id', NEW.jti)::text);
  RETURN NEW;
END;
$$;

CREATE TRIGGER revoked_tokens_notify
AFTER INSERT ON "revoked_tokens"
FOR EACH ROW EXECUTE FUNCTION gatehouse_notify_revocation();
