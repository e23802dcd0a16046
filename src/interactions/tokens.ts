// Access tokens for people and APIs that require roles.
//
// For a resource created with requireRoles, a person's access token carries
// only the granted scopes that their roles on that API still give (looked up
// each time a token is minted, so a role taken away applies at the next
// refresh) and a `roles` claim with the names of those roles.
//
// This applies to tokens minted from a person's sign-in (authorization code
// and refresh token grants). Token exchange decides its own scopes.
import type { AccessToken, Configuration, KoaContextWithOIDC } from 'oidc-provider';
import { parseScopeParam, roleNamesFor } from '../resources/allowance.ts';
import { rolesForAccount } from '../resources/roles.ts';
import type { Patch } from '../oidc/seam.ts';
import type { InteractionDeps } from './index.ts';

/** Grant types whose tokens are minted for a signed-in person. */
const PEOPLE_GRANTS = new Set(['authorization_code', 'refresh_token', 'urn:ietf:params:oauth:grant-type:device_code', 'urn:openid:params:grant-type:ciba']);

/** `roles` claims decided while saving a token, read back by extraTokenClaims during the same save. */
const roleClaims = new WeakMap<object, string[]>();

function isPersonToken(token: AccessToken): boolean {
  if (typeof token.accountId !== 'string' || !token.accountId) return false;
  const first = typeof token.gty === 'string' ? token.gty.split(' ')[0] : undefined;
  return first !== undefined && PEOPLE_GRANTS.has(first);
}

/** Narrows the token's scope to the person's roles when its API requires roles. */
export async function applyRoleScopes(deps: Pick<InteractionDeps, 'db' | 'resources'>, token: AccessToken): Promise<void> {
  if (!isPersonToken(token) || !token.resourceServer) return;
  const aud = Array.isArray(token.aud) ? (token.aud.length === 1 ? token.aud[0] : undefined) : token.aud;
  if (typeof aud !== 'string') return;
  const resource = await deps.resources.get(aud);
  if (!resource?.requireRoles) return;
  const roles = await rolesForAccount(deps.db, token.accountId, resource.identifier);
  const allowed = new Set(roles.flatMap((r) => r.scopes));
  const scope = parseScopeParam(token.scope).filter((s) => allowed.has(s));
  token.scope = scope.length > 0 ? scope.join(' ') : undefined;
  roleClaims.set(token, roleNamesFor(resource, roles));
}

/** AccessToken#save with role-based scopes applied before the token is minted (installed by src/oidc/seam.ts). */
export function roleScopePatch(deps: Pick<InteractionDeps, 'db' | 'resources'>): Patch {
  return {
    method: 'AccessToken#save',
    why: "a person's token for a requireRoles API carries only what their roles grant now",
    wrap: (save) =>
      async function saveWithRoles(this: AccessToken): Promise<string> {
        await applyRoleScopes(deps, this);
        return save.call(this) as Promise<string>;
      },
  };
}

/** extraTokenClaims: the `roles` claim of a person's token for an API that requires roles. */
export const roleTokenClaims: NonNullable<Configuration['extraTokenClaims']> = (_ctx: KoaContextWithOIDC, token) => {
  const roles = roleClaims.get(token);
  return roles ? { roles } : undefined;
};
