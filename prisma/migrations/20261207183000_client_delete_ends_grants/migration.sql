-- Deleting a client ends its grants for good (PRODUCT.md, token rules): its
-- grants and everything issued under them (codes, refresh tokens, the rows
-- that keep grant-bound JWT access tokens standing, those of tokens other
-- services exchanged from them included) go in the same transaction as the
-- client, whichever path deleted it (CLI, admin API, apply --prune, psql).
-- A client registered anew under the same id therefore starts with nothing;
-- its old client_credentials JWTs are refused because they were issued before
-- the new client existed (src/oidc/introspection.ts).
-- oidc_payloads keeps these rows as JSON, so no foreign key can cascade.
CREATE FUNCTION gatehouse_end_client_grants() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
  DELETE FROM oidc_payloads
   WHERE (model <> 'Session' AND payload->>'clientId' = OLD.id)
      OR grant_id IN (SELECT g.id FROM oidc_payloads g WHERE g.model = 'Grant' AND g.payload->>'clientId' = OLD.id);
  RETURN OLD;
END;
$$;

CREATE TRIGGER clients_end_grants
AFTER DELETE ON "clients"
FOR EACH ROW EXECUTE FUNCTION gatehouse_end_client_grants();
