/**
 * `gatehouse/verify` — protect a Node service with Gatehouse access tokens.
 *
 * Self-contained: depends on `jose` and node built-ins only, never on the
 * rest of Gatehouse.
 *
 * ```ts
 * import { createVerifier, requireScopes, koaRequireScopes } from 'gatehouse/verify';
 * const verifier = createVerifier({ issuer: 'https://id.example.com', audience: 'https://orders.example.com' });
 * const claims = await verifier.verify(token, { scopes: ['orders:read'] });
 * app.use(koaRequireScopes(verifier, ['orders:read']));          // Koa: ctx.state.auth = claims
 * http.createServer((req, res) => requireScopes(verifier, ['orders:read'])(req, res, () => { … })); // req.auth = claims
 * ```
 *
 * See docs/verify.md for the guide.
 * @module
 */
export {
  createVerifier,
  DEFAULT_ALGORITHMS,
  DEFAULT_DPOP_ALGORITHMS,
  SUPPORTED_ALGORITHMS,
  type AccessTokenClaims,
  type ActorClaim,
  type Verifier,
  type VerifierOptions,
  type VerifyOptions,
} from './verifier.ts';
export { VerifyError, wwwAuthenticate, type ChallengeOptions, type VerifyErrorCode } from './errors.ts';
export { accessTokenHash, type DpopRequest, type ReplayStore } from './dpop.ts';
export {
  koaRequireScopes,
  readCredentials,
  requestUrl,
  requireScopes,
  type AuthenticatedRequest,
  type HeadersLike,
  type KoaContextLike,
  type MiddlewareOptions,
  type NodeRequestLike,
  type NodeResponseLike,
} from './middleware.ts';
export {
  ACCESS_TOKEN_TYPE,
  createTokenClient,
  TOKEN_EXCHANGE_GRANT,
  TokenRequestError,
  type ClientCredentialsParams,
  type ExchangeParams,
  type IssuedToken,
  type TokenClient,
  type TokenClientOptions,
} from './token-client.ts';
export { discoveryUrl, type FetchFunction, type IssuerMetadata } from './remote.ts';
