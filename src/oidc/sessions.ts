// Ending a person's access: sign them out everywhere, and tell the apps.
//
// endAccountSessions deletes, in one statement, every oidc-provider record of
// the account: its sessions (on every device), its grants and everything
// issued under them (authorization codes, refresh tokens, opaque access
// tokens, the rows that keep grant-bound JWT access tokens standing — also
// those token exchange minted from them), and its pending interactions. The
// next request with an old session cookie finds no session (prompt=none →
// login_required), refresh tokens are refused (invalid_grant), and every
// JWT access token of those grants stops standing at introspection, token
// exchange and the admin API (introspection.ts tokenStanding).
//
// Then each app the person was signed in to through those sessions, and
// that registered a back-channel logout URI, gets an OpenID Connect
// Back-Channel Logout token (sub + sid), sent by oidc-provider's own
// Client#backchannelLogout (signed with the current keys, through the
// provider's outbound fetch). Used by `users revoke-sessions`, `disable` and
// `delete`, from the CLI and the admin API.
//
// The payload's `accountId` is not indexed: this scans oidc_payloads, which
// is fine for an occasional administrator action.
import type Provider from 'oidc-provider';
import { isAccountId } from '../accounts/store.ts';
import type { Db } from '../db/client.ts';

/** One app to tell that the person's session `sid` ended. */
export interface LogoutNotice {
  clientId: string;
  accountId: string;
  sid: string;
}

export interface LogoutDelivery {
  clientId: string;
  delivered: boolean;
  /** why not (never a token) */
  error?: string;
}

export interface EndedSessions {
  sessions: number;
  grants: number;
  /** every row deleted (sessions, grants, tokens, codes, interactions) */
  records: number;
  /** back-channel logout notices, one per (app, session) with a back-channel logout URI */
  backchannel: LogoutDelivery[];
}

/** oidc-provider's Client#backchannelLogout (not in its type declarations). */
interface BackchannelClient {
  backchannelLogoutUri?: string;
  backchannelLogout(sub: string, sid: string): Promise<void>;
}

/** Sends back-channel logout notices (with the provider serving now, or one built for the CLI). */
export type BackchannelSender = (notices: LogoutNotice[]) => Promise<LogoutDelivery[]>;

interface DeletedRow {
  model: string;
  authorizations: Record<string, { sid?: unknown }> | null;
}

/** Signs the person out everywhere and sends back-channel logout to the apps of the sessions that ended. */
export async function endAccountSessions(db: Db, accountId: string, send?: BackchannelSender): Promise<EndedSessions> {
  if (typeof accountId !== 'string' || !isAccountId(accountId)) return { sessions: 0, grants: 0, records: 0, backchannel: [] };
  const rows = await db.$queryRaw<DeletedRow[]>`
    WITH grants AS (
      SELECT id FROM oidc_payloads WHERE model = 'Grant' AND payload->>'accountId' = ${accountId}
    )
    DELETE FROM oidc_payloads
    WHERE payload->>'accountId' = ${accountId}
       OR grant_id IN (SELECT id FROM grants)
    RETURNING model, CASE WHEN model = 'Session' THEN payload->'authorizations' END AS authorizations`;
  const notices: LogoutNotice[] = [];
  for (const row of rows) {
    if (row.model !== 'Session' || !row.authorizations || typeof row.authorizations !== 'object') continue;
    for (const [clientId, authorization] of Object.entries(row.authorizations)) {
      if (typeof authorization?.sid === 'string') notices.push({ clientId, accountId, sid: authorization.sid });
    }
  }
  const count = (m: string) => rows.filter((r) => r.model === m).length;
  return {
    sessions: count('Session'),
    grants: count('Grant'),
    records: rows.length,
    backchannel: send && notices.length > 0 ? await send(notices) : [],
  };
}

/**
 * Back-channel logout through `provider`: only apps that registered a
 * back-channel logout URI are told; a failure is reported, never thrown
 * (the sessions have ended whatever the app answers), and emitted as
 * oidc-provider's backchannel.error event, which is logged.
 */
export function backchannelSender(provider: () => Provider | Promise<Provider>): BackchannelSender {
  return async (notices) => {
    const p = await provider();
    const results = await Promise.all(
      notices.map(async ({ clientId, accountId, sid }): Promise<LogoutDelivery | undefined> => {
        const client = (await p.Client.find(clientId).catch(() => undefined)) as BackchannelClient | undefined;
        if (!client?.backchannelLogoutUri) return undefined;
        try {
          await client.backchannelLogout(accountId, sid);
          p.emit('backchannel.success', undefined, client, accountId, sid);
          return { clientId, delivered: true };
        } catch (err) {
          p.emit('backchannel.error', undefined, err, client, accountId, sid);
          return { clientId, delivered: false, error: (err as Error).message };
        }
      }),
    );
    return results.filter((r): r is LogoutDelivery => r !== undefined);
  };
}
