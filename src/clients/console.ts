// The built-in client of the admin console (/console, src/http/console.ts):
// a public client (no secret: it runs in the browser) using the code flow
// with PKCE S256, whose only redirect is <issuer>/console/callback. It asks
// for the admin API (urn:gatehouse:admin) and its scopes; what a person's
// token carries is cut to their roles on that API at minting and again on
// every call (src/admin/auth.ts), so the client itself grants nobody
// anything: people reach the console through gatehouse-admin or a narrower
// role.
//
// Created at first start like the built-in admin resource and role
// (src/resources/store.ts ensureBuiltInResources), and brought back to its
// definition at every start: its redirect URIs, grants, auth method,
// resources and scopes are fixed (a start with another ISSUER moves the
// redirect). What an operator may decide stays as they set it: its name, its
// lifetimes, requireMfa, and disabled (disabling it turns the console off).
import { publishChange } from '../db/changes.ts';
import { inTransaction, type DbOrTx } from '../kernel/tx.ts';
import { ADMIN_RESOURCE, ADMIN_SCOPES } from '../resources/store.ts';

export const CONSOLE_CLIENT_ID = 'gatehouse-console';
export const CONSOLE_CALLBACK_PATH = '/console/callback';

/** What the console asks for: sign-in, then the admin API's scopes (cut to the person's roles). */
export const CONSOLE_SCOPES: readonly string[] = Object.freeze(['openid', 'profile', 'email', ...ADMIN_SCOPES]);

export function consoleRedirects(issuer: string): { redirectUris: string[]; postLogoutRedirectUris: string[] } {
  const base = issuer.replace(/\/+$/, '');
  return { redirectUris: [`${base}${CONSOLE_CALLBACK_PATH}`], postLogoutRedirectUris: [`${base}/console/`] };
}

/** Creates the console's client or brings it back to its definition; returns whether anything was written. */
export async function ensureConsoleClient(db: DbOrTx, issuer: string): Promise<boolean> {
  const { redirectUris, postLogoutRedirectUris } = consoleRedirects(issuer);
  const scopes = [...CONSOLE_SCOPES];
  const grants = ['authorization_code'];
  const resources = [ADMIN_RESOURCE];
  return inTransaction(db, async (tx) => {
    const rows = await tx.$queryRaw<{ id: string }[]>`
      INSERT INTO clients (id, name, public, auth_method, grant_types, redirect_uris, post_logout_redirect_uris, scopes, resources,
                           first_party, updated_at)
      VALUES (${CONSOLE_CLIENT_ID}, 'Gatehouse console', true, 'none', ${grants}::text[], ${redirectUris}::text[],
              ${postLogoutRedirectUris}::text[], ${scopes}::text[], ${resources}::text[], true, now())
      ON CONFLICT (id) DO UPDATE
         SET public = true, auth_method = 'none', secret_digest = NULL, previous_secret_digest = NULL, previous_secret_expires_at = NULL,
             grant_types = EXCLUDED.grant_types, redirect_uris = EXCLUDED.redirect_uris,
             post_logout_redirect_uris = EXCLUDED.post_logout_redirect_uris, scopes = EXCLUDED.scopes, resources = EXCLUDED.resources,
             jwks = NULL, jwks_uri = NULL, backchannel_logout_uri = NULL, first_party = true,
             version = clients.version + 1, updated_at = now()
       WHERE NOT clients.public OR clients.auth_method <> 'none' OR clients.secret_digest IS NOT NULL
          OR clients.grant_types <> EXCLUDED.grant_types OR clients.redirect_uris <> EXCLUDED.redirect_uris
          OR clients.post_logout_redirect_uris <> EXCLUDED.post_logout_redirect_uris OR clients.scopes <> EXCLUDED.scopes
          OR clients.resources <> EXCLUDED.resources OR clients.jwks IS NOT NULL OR clients.jwks_uri IS NOT NULL
          OR clients.backchannel_logout_uri IS NOT NULL OR NOT clients.first_party
      RETURNING id`;
    for (const { id } of rows) await publishChange(tx, 'client', id);
    return rows.length > 0;
  });
}
