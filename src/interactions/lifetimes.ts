// How long refresh tokens and grants live.
//
// Refresh tokens have two limits:
//   - an absolute lifetime, counted from the first refresh token of the
//     chain (oidc-provider's `iiat`): REFRESH_TOKEN_LIFETIME_SECONDS, or the
//     client's own `refreshTokenTtl` when set;
//   - an idle lifetime: each rotation issues a token that expires after
//     REFRESH_TOKEN_IDLE_SECONDS unless used (and rotated) before.
// So a token's TTL is min(idle, absolute − age of the chain).
//
// A grant (the record of what the person consented to, which every token of
// the chain points at) must outlive the tokens issued from it: it lives for
// the session lifetime, or for the absolute refresh lifetime when the client
// may refresh, whichever is longer; a new authorization that finds the grant
// too close to its end extends it.

/** oidc-provider's Session TTL (src/oidc/provider.ts): a grant never lives shorter. */
export const SESSION_TTL_SECONDS = 14 * 86_400;

export const DEFAULT_REFRESH_LIFETIME_SECONDS = 30 * 86_400;
export const DEFAULT_REFRESH_IDLE_SECONDS = 7 * 86_400;

export interface RefreshPolicy {
  /** absolute lifetime of a refresh-token chain */
  lifetimeSeconds: number;
  /** a refresh token unused for this long expires */
  idleSeconds: number;
}

export const epochNow = (): number => Math.floor(Date.now() / 1000);

/** The policy for one client: its own absolute lifetime wins over the default. */
export function refreshPolicyFor(defaults: RefreshPolicy, clientLifetimeSeconds: number | null | undefined): RefreshPolicy {
  const lifetimeSeconds = clientLifetimeSeconds ?? defaults.lifetimeSeconds;
  return { lifetimeSeconds, idleSeconds: Math.min(defaults.idleSeconds, lifetimeSeconds) };
}

/** TTL in seconds of a refresh token issued now in a chain that started at `iiat` (≥ 1). */
export function refreshTokenTtl(policy: RefreshPolicy, iiat: number | undefined, now = epochNow()): number {
  const age = typeof iiat === 'number' && Number.isFinite(iiat) ? Math.max(0, now - iiat) : 0;
  return Math.max(1, Math.min(policy.idleSeconds, policy.lifetimeSeconds - age));
}

/** How long a grant of this client must live from now. */
export function grantTtl(policy: RefreshPolicy, clientMayRefresh: boolean): number {
  return clientMayRefresh ? Math.max(SESSION_TTL_SECONDS, policy.lifetimeSeconds) : SESSION_TTL_SECONDS;
}

/** A grant found with less than this left is extended (at most one write a day). */
export function grantNeedsExtension(exp: number | undefined, ttl: number, now = epochNow()): boolean {
  if (typeof exp !== 'number') return false;
  return exp - now < ttl - 86_400;
}
