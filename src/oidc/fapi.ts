// The FAPI 2.0 Security Profile, per client (`--profile fapi2`, see
// src/clients/store.ts checkFapi2 for what registration demands), through
// oidc-provider's documented configuration only:
//
// - features.fapi.profile(ctx, client): '2.0' for a client whose metadata
//   carries gatehouse_profile: fapi2 (extraClientMetadata; clients.ts sets
//   it). oidc-provider then requires PKCE and a redirect_uri, and client
//   assertions whose aud is the issuer.
// - PAR: the client's require_pushed_authorization_requests (clients.ts).
// - DPoP-bound tokens: the client's dpop_bound_access_tokens (clients.ts).
// - private_key_jwt: the client's token_endpoint_auth_method (registration).
// - PS256 / ES256 only: client assertions (assertJwtClientAuthClaimsAndHeader)
//   and request objects (requestObjects.assertJwtClaimsAndHeader) signed
//   with anything else are refused; ID tokens are signed with ES256.
// - short-lived codes: 30 s instead of 60 (provider.ts ttl).
import { errors, type ClientMetadata, type Configuration, type KoaContextWithOIDC } from 'oidc-provider';
import { FAPI2_ALGS, type ClientProfile } from '../clients/store.ts';

/** The client metadata property that names a client's profile. */
export const PROFILE_METADATA = 'gatehouse_profile';

/** Seconds an authorization code of a fapi2 client lives. */
export const FAPI2_CODE_TTL_SECONDS = 30;

type Metadata = () => Record<string, unknown>;

/** The profile oidc-provider's client carries (undefined: none). */
export function profileOf(client: { metadata?: Metadata } | undefined): ClientProfile | undefined {
  const v = client?.metadata?.()[PROFILE_METADATA];
  return v === 'fapi2' ? v : undefined;
}

const fapiAlg = (alg: unknown): boolean => typeof alg === 'string' && (FAPI2_ALGS as readonly string[]).includes(alg);

type Features = NonNullable<Configuration['features']>;

export const extraClientMetadata: NonNullable<Configuration['extraClientMetadata']> = {
  properties: [PROFILE_METADATA],
  validator(_ctx, key, value) {
    if (key === PROFILE_METADATA && value !== undefined && value !== 'fapi2') throw new errors.InvalidClientMetadata(`${PROFILE_METADATA} must be fapi2`);
  },
};

export const fapi: NonNullable<Features['fapi']> = {
  enabled: true,
  profile: (_ctx, client) => (profileOf(client as unknown as { metadata?: Metadata }) === 'fapi2' ? '2.0' : undefined),
};

/** Client assertions (private_key_jwt): oidc-provider's FAPI 2.0 audience rule, and PS256/ES256 only. */
export const assertJwtClientAuthClaimsAndHeader: NonNullable<Configuration['assertJwtClientAuthClaimsAndHeader']> = (ctx, claims, header) => {
  if (!ctx.oidc.isFapi('2.0')) return;
  if (claims.aud !== ctx.oidc.issuer) throw new errors.InvalidClientAuth('audience (aud) must equal the issuer identifier url');
  if (!fapiAlg(header.alg)) throw new errors.InvalidClientAuth(`FAPI 2.0: client assertions must be signed with ${FAPI2_ALGS.join(' or ')}, not ${String(header.alg)}`);
};

type RequestObjects = NonNullable<Features['requestObjects']>;

/**
 * Request objects (JAR, RFC 9101): oidc-provider's own FAPI checks (exp, aud
 * and nbf present; at most an hour between nbf and exp), and PS256/ES256 only
 * for fapi2 clients. Request objects are verified with the client's
 * registered keys (jwks / jwks_uri); unsigned ones (alg none) are refused by
 * oidc-provider (none is not among the enabled algorithms; PAR's own stored
 * requests are the exception it makes for itself).
 */
export const assertJwtClaimsAndHeader: NonNullable<RequestObjects['assertJwtClaimsAndHeader']> = (ctx: KoaContextWithOIDC, claims, header) => {
  // alg none: oidc-provider's own copy of a pushed request (checked when it was pushed)
  if (!ctx.oidc.isFapi('2.0') || header.alg === 'none') return;
  for (const claim of ['exp', 'aud', 'nbf'] as const) {
    if (claims[claim] === undefined) throw new errors.InvalidRequestObject(`Request Object is missing the '${claim}' claim`);
  }
  const diff = Number(claims.exp) - Number(claims.nbf);
  if (!(diff > 0) || diff > 3600) throw new errors.InvalidRequestObject("Request Object 'exp' claim too far from 'nbf' claim");
  if (!fapiAlg(header.alg)) throw new errors.InvalidRequestObject(`FAPI 2.0: request objects must be signed with ${FAPI2_ALGS.join(' or ')}, not ${String(header.alg)}`);
};

/** Metadata the fapi2 profile adds to a client (clients.ts toClientMetadata). */
export function fapi2Metadata(): Partial<ClientMetadata> {
  return { [PROFILE_METADATA]: 'fapi2', id_token_signed_response_alg: 'ES256', require_pushed_authorization_requests: true, dpop_bound_access_tokens: true };
}
