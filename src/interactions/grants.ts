// What a person grants a client: the Grant oidc-provider keeps for each
// (account, client) and that every code, access and refresh token points at.
//
// For each API resource asked for, the scopes granted are
//   requested ∩ the client's allowance (allowance.ts)
//             ∩ for a resource with requireRoles: the scopes of the person's roles on it
//               (first-party clients: applied when each token is minted instead, so that
//               role changes in both directions apply at the next refresh).
// Requested scopes that cannot be granted are recorded as rejected, so
// oidc-provider does not ask for consent again on every sign-in; a later
// consent (prompt=consent, or every sign-in for first-party clients) that
// can grant them takes them out of the rejected list again.
import type { Grant } from 'oidc-provider';
import type { ClientRecord } from '../clients/store.ts';
import { allowedScopes, grantableScopes, parseScopeParam } from '../resources/allowance.ts';
import { rolesForAccount } from '../resources/roles.ts';
import type { ResourceRecord } from '../resources/store.ts';
import type { InteractionDeps } from './index.ts';

/** The OpenID scopes oidc-provider knows (src/oidc/provider.ts). */
export const OIDC_SCOPES: readonly string[] = ['openid', 'profile', 'email', 'offline_access'];

/** Claims that are never consented to (oidc-provider's NON_REJECTABLE_CLAIMS). */
const IMPLICIT_CLAIMS = new Set(['sub', 'sid', 'auth_time', 'acr', 'amr', 'iss']);

export interface ResourceAccess {
  resource: Readonly<ResourceRecord>;
  /** asked for and offered to this client */
  requested: string[];
  /** what the person can grant */
  granted: string[];
  /** requested but not grantable (no allowance or no role) */
  refused: string[];
}

export interface RequestedAccess {
  oidcScopes: string[];
  claims: string[];
  resources: ResourceAccess[];
}

/** The authorization parameters that matter here (oidc-provider's params object). */
export interface AccessParams {
  scope?: unknown;
  resource?: unknown;
}

function resourceList(params: AccessParams, _client: Readonly<ClientRecord>): string[] {
  const r = params.resource;
  if (typeof r === 'string' && r) return [r];
  if (Array.isArray(r)) return [...new Set(r.filter((x): x is string => typeof x === 'string' && x.length > 0))];
  return []; // no resource named: a login's token is for userinfo (defaultResource, resource-indicators.ts)
}

/** Works out what the request asks for and what this person may grant. */
export async function resolveRequestedAccess(
  deps: Pick<InteractionDeps, 'db' | 'resources'>,
  input: {
    params: AccessParams;
    client: Readonly<ClientRecord>;
    accountId: string;
    claims?: Iterable<string>;
    /**
     * Grant what the client may have, leaving roles to token minting
     * (tokens.ts narrows every token to the person's current roles). Used for
     * first-party clients, where nobody is asked for consent: a role added
     * later then applies at the next refresh, like one taken away.
     */
    rolesAtMinting?: boolean;
  },
): Promise<RequestedAccess> {
  const scopes = parseScopeParam(typeof input.params.scope === 'string' ? input.params.scope : '');
  const oidcScopes = scopes.filter((s) => OIDC_SCOPES.includes(s));
  const claims = [...new Set(input.claims ?? [])].filter((c) => !IMPLICIT_CLAIMS.has(c));
  const resources: ResourceAccess[] = [];
  for (const identifier of resourceList(input.params, input.client)) {
    const resource = await deps.resources.get(identifier);
    if (!resource) continue; // oidc-provider refused unknown resources already (invalid_target)
    const offered = new Set(allowedScopes(input.client, resource));
    const requested = scopes.filter((s) => offered.has(s));
    const roles = resource.requireRoles && !input.rolesAtMinting ? await rolesForAccount(deps.db, input.accountId, resource.identifier) : undefined;
    const granted = grantableScopes(requested, input.client, resource, roles);
    const grantedSet = new Set(granted);
    resources.push({ resource, requested, granted, refused: requested.filter((s) => !grantedSet.has(s)) });
  }
  return { oidcScopes, claims, resources };
}

function withoutScopes(value: string | undefined, remove: readonly string[]): string | undefined {
  if (!value) return value;
  const drop = new Set(remove);
  const kept = value.split(' ').filter((s) => s && !drop.has(s));
  return kept.length > 0 ? kept.join(' ') : undefined;
}

/** Takes scopes out of the grant's rejected list (they are being granted now). */
function unreject(grant: Grant, resource: string | null, scopes: readonly string[]): void {
  const rejected = grant.rejected;
  if (!rejected || scopes.length === 0) return;
  if (resource === null) {
    if (rejected.openid) {
      const scope = withoutScopes(rejected.openid.scope, scopes);
      if (scope) rejected.openid.scope = scope;
      else delete rejected.openid.scope;
    }
  } else if (rejected.resources?.[resource] !== undefined) {
    const scope = withoutScopes(rejected.resources[resource], scopes);
    if (scope) rejected.resources[resource] = scope;
    else delete rejected.resources[resource];
  }
}

const snapshot = (g: Grant) => JSON.stringify([g.openid ?? null, g.resources ?? null, g.rejected ?? null]);

/** Records the access in the grant. Returns whether the grant changed. */
export function applyAccess(grant: Grant, access: RequestedAccess): boolean {
  const before = snapshot(grant);
  if (access.oidcScopes.length > 0) {
    grant.addOIDCScope(access.oidcScopes);
    unreject(grant, null, access.oidcScopes);
  }
  if (access.claims.length > 0) grant.addOIDCClaims(access.claims);
  for (const r of access.resources) {
    if (r.granted.length > 0) {
      grant.addResourceScope(r.resource.identifier, r.granted);
      unreject(grant, r.resource.identifier, r.granted);
    }
    if (r.refused.length > 0) grant.rejectResourceScope(r.resource.identifier, r.refused);
  }
  return snapshot(grant) !== before;
}
