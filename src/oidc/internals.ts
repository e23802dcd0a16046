// The only module that imports oidc-provider's internal files (seam.ts is the
// other half of the seam: the methods Gatehouse replaces). oidc-provider has
// no public API for what these give Gatehouse; each is typed here, and
// checkInternals() (run when the first provider is built) verifies that each
// still has the shape relied on, so an upgrade that moves one fails at
// start-up with a line naming it, never silently.
//
//   lib/helpers/als.js                  the AsyncLocalStorage holding each request's context
//   lib/helpers/revoke.js               what oidc-provider does to a grant on a second use
//   lib/helpers/validate_dpop.js        the DPoP proof check of the built-in grants
//   lib/actions/index.js                the introspection and revocation route stacks
//   lib/shared/reject_structured_tokens.js  the step in them that refuses JWTs
import type Provider from 'oidc-provider';
import type { KoaContextWithOIDC, errors } from 'oidc-provider';
// @ts-expect-error -- internal module of oidc-provider, shipped without types
import als from 'oidc-provider/lib/helpers/als.js';
// @ts-expect-error -- internal module of oidc-provider, shipped without types
import revoke from 'oidc-provider/lib/helpers/revoke.js';
// @ts-expect-error -- internal module of oidc-provider, shipped without types
import validateDpopProof, { checkDpopReplay as checkDpopReplayInternal } from 'oidc-provider/lib/helpers/validate_dpop.js';
// @ts-expect-error -- internal module of oidc-provider, shipped without types
import * as actions from 'oidc-provider/lib/actions/index.js';
// @ts-expect-error -- internal module of oidc-provider, shipped without types
import rejectStructuredTokensStep from 'oidc-provider/lib/shared/reject_structured_tokens.js';

export interface DpopProof {
  thumbprint: string;
  jti: string;
  iat: number;
}

let checked = false;

/** Throws one line naming the first internal that is not where it is expected. */
export function checkInternals(): void {
  if (checked) return;
  const problems: string[] = [];
  if (typeof (als as { getStore?: unknown }).getStore !== 'function') problems.push('lib/helpers/als.js (AsyncLocalStorage)');
  if (typeof revoke !== 'function') problems.push('lib/helpers/revoke.js');
  if (typeof validateDpopProof !== 'function' || typeof checkDpopReplayInternal !== 'function') problems.push('lib/helpers/validate_dpop.js');
  const stacks = actions as Record<string, unknown>;
  for (const name of ['introspection', 'revocation']) {
    const stack = stacks[name];
    if (!Array.isArray(stack) || (!stack.includes(rejectStructuredTokensStep) && !structuredTokensAccepted)) {
      problems.push(`lib/actions/index.js ${name} (with lib/shared/reject_structured_tokens.js)`);
    }
  }
  if (problems.length > 0) {
    throw new Error(`oidc-provider internals changed (${problems.join(', ')}); adapt src/oidc/internals.ts to this oidc-provider version`);
  }
  checked = true;
}

/** The request oidc-provider is serving now (undefined outside a request). */
export function currentRequest(): KoaContextWithOIDC | undefined {
  return (als as { getStore(): unknown }).getStore() as KoaContextWithOIDC | undefined;
}

/** oidc-provider's own grant revocation (tokens, codes, the grant; emits grant.revoked). */
export function revokeGrant(ctx: KoaContextWithOIDC, grantId: string): Promise<void> {
  return (revoke as (c: unknown, g: unknown) => Promise<void>)(ctx, grantId);
}

/** The DPoP proof of the current token request, checked as the built-in grants check it; undefined when none was sent. */
export function validateDpop(provider: Provider, ctx: KoaContextWithOIDC): Promise<DpopProof | undefined> {
  return (validateDpopProof as (p: Provider, c: unknown) => Promise<DpopProof | undefined>)(provider, ctx);
}

/** Records the proof's jti (single use across instances, through the adapter's ReplayDetection). */
export function checkDpopReplay(
  provider: Provider,
  ctx: KoaContextWithOIDC,
  proof: DpopProof,
  clientId: string,
  errorClass: typeof errors.InvalidDpopProof,
): Promise<void> {
  return (checkDpopReplayInternal as (p: Provider, c: unknown, d: DpopProof, id: string, e: unknown) => Promise<void>)(
    provider,
    ctx,
    proof,
    clientId,
    errorClass,
  );
}

let structuredTokensAccepted = false;

/**
 * Removes oidc-provider's "structured tokens cannot be introspected/revoked"
 * step from the introspection and revocation routes (introspection.ts makes
 * JWT access tokens introspectable). Routes are composed from these
 * module-level arrays when a provider is constructed, so this runs before
 * the first `new Provider` (provider.ts calls it).
 */
export function acceptStructuredTokens(): void {
  if (structuredTokensAccepted) return;
  checkInternals();
  const stacks = actions as Record<string, unknown[]>;
  for (const name of ['introspection', 'revocation']) stacks[name]!.splice(stacks[name]!.indexOf(rejectStructuredTokensStep), 1);
  structuredTokensAccepted = true;
}
