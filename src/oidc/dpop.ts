// DPoP (RFC 9449) at the token endpoint: precise error codes.
//
// oidc-provider (features.dPoP, see provider.ts) validates proofs itself:
// malformed proofs and wrong htm/htu/iat already get `invalid_dpop_proof`.
// Two cases it reports as a generic `invalid_grant` ("grant request is
// invalid", the reason only in the unexposed error_detail): no proof from a
// client registered with requireDpop (`dpop_bound_access_tokens`), and a
// replayed proof. PRODUCT.md requires `invalid_dpop_proof` for both, so the
// token endpoint's error event rewrites them before the response is sent.
//
// Replay detection uses the adapter's ReplayDetection model, whose insert is
// single-use: when two requests carry the same proof at once, the loser gets
// the adapter's `invalid_request` "replay detected" (AdapterInputError); that
// too becomes `invalid_dpop_proof` when the request carried a DPoP proof and
// no client assertion (and `invalid_client` for a replayed client assertion
// without a proof; with both, which one was replayed is unknown and the
// answer stays invalid_request).
//
// Nonces: none. `nonceSecret` is unset, so oidc-provider neither issues nor
// requires DPoP-Nonce; proofs are accepted within its iat window and made
// single-use by jti.
import type Provider from 'oidc-provider';
import type { KoaContextWithOIDC } from 'oidc-provider';

interface ErrorBody {
  error?: unknown;
  error_description?: unknown;
}

/** oidc-provider's error_detail for DPoP failures it raises as invalid_grant */
const DPOP_GRANT_ERRORS = new Set(['DPoP proof JWT not provided', 'DPoP proof JWT Replay detected']);

const installed = new WeakSet<Provider>();

function param(ctx: KoaContextWithOIDC, name: string): unknown {
  return (ctx.oidc?.params as Record<string, unknown> | undefined)?.[name];
}

/** Called on every provider built: DPoP failures at /token answer `invalid_dpop_proof`. */
export function installDpopErrors(provider: Provider): void {
  if (installed.has(provider)) return;
  installed.add(provider);
  provider.on('grant.error', (ctx, err) => {
    const body = ctx.body as ErrorBody | undefined;
    if (!body || typeof body !== 'object' || ctx.status !== 400) return;
    const { error_detail: detail } = err as { error_detail?: unknown };
    if (body.error === 'invalid_grant' && typeof detail === 'string' && DPOP_GRANT_ERRORS.has(detail)) {
      ctx.body = { error: 'invalid_dpop_proof', error_description: detail };
      return;
    }
    renameLostReplayRace(ctx, body);
  });
  // client assertions are single-use at these endpoints too
  provider.on('introspection.error', (ctx) => renameLostReplayRace(ctx, ctx.body as ErrorBody | undefined));
  provider.on('revocation.error', (ctx) => renameLostReplayRace(ctx, ctx.body as ErrorBody | undefined));
}

function renameLostReplayRace(ctx: KoaContextWithOIDC, body: ErrorBody | undefined): void {
  if (!body || typeof body !== 'object' || ctx.status !== 400) return;
  if (body.error !== 'invalid_request' || body.error_description !== 'replay detected') return;
  const proof = !!ctx.get('DPoP');
  const assertion = param(ctx, 'client_assertion') !== undefined;
  if (proof && !assertion && ctx.oidc.route === 'token') {
    ctx.body = { error: 'invalid_dpop_proof', error_description: 'DPoP proof JWT Replay detected' };
  } else if (assertion && !proof) {
    ctx.status = 401;
    ctx.body = { error: 'invalid_client', error_description: 'client authentication failed' };
  }
}
