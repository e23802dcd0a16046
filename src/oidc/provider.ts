// Builds the oidc-provider instance from Gatehouse's configuration and the
// domains' policies. Everything dynamic (clients, resources, accounts, keys)
// comes in through `ProviderDeps`; this file only says how they plug in.
import Provider, { type Adapter, type Configuration, type JWKS, type KoaContextWithOIDC } from 'oidc-provider';
import type { Config } from '../config/config.ts';
import { guardedFetch } from '../http/outbound.ts';
import { SIGNING_ALGS } from '../keys/index.ts';
import { createLogger, type Logger } from '../logging/logger.ts';
import { adapterDatabase } from './adapter.ts';
import { assertJwtClaimsAndHeader, assertJwtClientAuthClaimsAndHeader, extraClientMetadata, fapi, FAPI2_CODE_TTL_SECONDS, profileOf } from './fapi.ts';
import { refreshRotation } from './refresh-rotation.ts';
import { installPatches, type Patch } from './seam.ts';
import { singleUsePatches } from './single-use.ts';

type AdapterFactory = new (name: string) => Adapter;
type Features = NonNullable<Configuration['features']>;

export interface ProviderDeps {
  config: Config;
  /** private signing keys, signing keys first (see src/keys) */
  jwks: JWKS;
  adapter: AdapterFactory;
  findAccount?: Configuration['findAccount'];
  /** resource indicators (RFC 8707): how tokens for APIs are minted */
  resourceIndicators?: Features['resourceIndicators'];
  introspectionAllowed?: NonNullable<Features['introspection']>['allowedPolicy'];
  revocationAllowed?: NonNullable<Features['revocation']>['allowedPolicy'];
  extraTokenClaims?: Configuration['extraTokenClaims'];
  extraClientMetadata?: Configuration['extraClientMetadata'];
  loadExistingGrant?: Configuration['loadExistingGrant'];
  renderError?: Configuration['renderError'];
  logoutSource?: NonNullable<Features['rpInitiatedLogout']>['logoutSource'];
  postLogoutSuccessSource?: NonNullable<Features['rpInitiatedLogout']>['postLogoutSuccessSource'];
  interactionPolicy?: NonNullable<Configuration['interactions']>['policy'];
  issueRefreshToken?: Configuration['issueRefreshToken'];
  ttl?: Partial<NonNullable<Configuration['ttl']>>;
  acrValues?: string[];
  /** the device flow's pages (RFC 8628 user code entry, confirmation, success) */
  devicePages?: Pick<NonNullable<Features['deviceFlow']>, 'userCodeInputSource' | 'userCodeConfirmSource' | 'successSource'>;
  /** the domains' replacements of oidc-provider methods, for this provider (seam.ts installs them) */
  patches?: (provider: Provider) => Patch[];
  /** for what the provider's own hooks log (default: a logger at config.logLevel) */
  logger?: Logger;
}

const fallbackLoggers = new Map<string, Logger>();
function fallbackLogger(level: string): Logger {
  let logger = fallbackLoggers.get(level);
  if (!logger) fallbackLoggers.set(level, (logger = createLogger(level)));
  return logger;
}

// One guarded fetch (one connection pool) per configuration, shared by the
// providers rebuilt when the signing keys change.
const outboundFetches = new WeakMap<Config, NonNullable<Configuration['fetch']>>();
function outboundFetch(config: Config, logger: Logger): NonNullable<Configuration['fetch']> {
  let f = outboundFetches.get(config);
  if (!f) outboundFetches.set(config, (f = guardedFetch(config.outboundAllowlist, logger) as NonNullable<Configuration['fetch']>));
  return f;
}

export function buildProvider(deps: ProviderDeps): Provider {
  const { config } = deps;
  const secure = config.issuer.startsWith('https://');
  const basePath = new URL(config.issuer).pathname.replace(/\/+$/, '');
  const configuration: Configuration = {
    adapter: deps.adapter as unknown as Configuration['adapter'],
    jwks: deps.jwks,
    findAccount: deps.findAccount,
    cookies: {
      keys: config.cookieSecrets,
      long: { signed: true, httpOnly: true, sameSite: 'lax', secure },
      short: { signed: true, httpOnly: true, sameSite: 'lax', secure },
      names: {
        session: secure ? '__Host-gh_session' : 'gh_session',
        interaction: 'gh_interaction',
        resume: 'gh_resume',
      },
    },
    claims: {
      // auth_time, amr and acr in every ID token (how the person signed in;
      // acr values: src/interactions/mfa.ts)
      openid: ['sub', 'auth_time', 'amr', 'acr'],
      profile: ['name', 'updated_at'],
      email: ['email', 'email_verified'],
    },
    scopes: ['openid', 'offline_access', 'profile', 'email'],
    clientDefaults: {
      grant_types: ['authorization_code'],
      id_token_signed_response_alg: 'RS256',
      response_types: ['code'],
      token_endpoint_auth_method: 'client_secret_basic',
    },
    enabledJWA: {
      idTokenSigningAlgValues: [...SIGNING_ALGS],
      userinfoSigningAlgValues: [...SIGNING_ALGS],
      introspectionSigningAlgValues: [...SIGNING_ALGS],
      authorizationSigningAlgValues: [...SIGNING_ALGS],
      clientAuthSigningAlgValues: ['RS256', 'PS256', 'ES256', 'EdDSA'],
      requestObjectSigningAlgValues: ['RS256', 'PS256', 'ES256', 'EdDSA'],
      dPoPSigningAlgValues: ['ES256', 'EdDSA', 'RS256', 'PS256'],
    },
    responseTypes: ['code'],
    pkce: {
      // S256 only (oidc-provider never accepts `plain`); public clients must use it.
      // FAPI 2.0 clients too (oidc-provider's default rule; this one replaces it).
      required: (ctx, client) => client.tokenEndpointAuthMethod === 'none' || Boolean(ctx.oidc.isFapi('2.0')),
    },
    features: {
      devInteractions: { enabled: false },
      clientCredentials: { enabled: true },
      introspection: { enabled: true, ...(deps.introspectionAllowed ? { allowedPolicy: deps.introspectionAllowed } : {}) },
      revocation: { enabled: true, ...(deps.revocationAllowed ? { allowedPolicy: deps.revocationAllowed } : {}) },
      userinfo: { enabled: true },
      dPoP: { enabled: true, nonceSecret: undefined },
      backchannelLogout: { enabled: true },
      rpInitiatedLogout: {
        enabled: true,
        ...(deps.logoutSource ? { logoutSource: deps.logoutSource } : {}),
        ...(deps.postLogoutSuccessSource ? { postLogoutSuccessSource: deps.postLogoutSuccessSource } : {}),
      },
      resourceIndicators: deps.resourceIndicators ?? { enabled: false },
      registration: { enabled: false },
      claimsParameter: { enabled: true },
      // RFC 8628. User codes: 8 characters of 20 consonants (no vowels, so no
      // words; no look-alike digits), 20^8 ≈ 2^34.6, shown as BCDF-GHJK; the
      // entry forgives case and dashes (oidc-provider normalises). Guessing is
      // throttled per address (src/interactions/device.ts); polling answers
      // slow_down (src/oidc/device.ts).
      // RFC 9126: for every client; required for clients with requirePar
      // (require_pushed_authorization_requests, src/oidc/clients.ts).
      pushedAuthorizationRequests: { enabled: true, requirePushedAuthorizationRequests: false, allowUnregisteredRedirectUris: false },
      // RFC 9101 request objects, verified with the client's registered keys
      // (jwks / jwks_uri); asymmetric algorithms only (enabledJWA above).
      requestObjects: { enabled: true, requireSignedRequestObject: false, assertJwtClaimsAndHeader },
      // FAPI 2.0 per client (--profile fapi2): src/oidc/fapi.ts
      fapi,
      deviceFlow: { enabled: true, charset: 'base-20', mask: '****-****', ...deps.devicePages },
    },
    interactions: {
      url: (_ctx, interaction) => `${basePath}/interaction/${interaction.uid}`,
      ...(deps.interactionPolicy ? { policy: deps.interactionPolicy } : {}),
    },
    extraTokenClaims: deps.extraTokenClaims,
    extraClientMetadata: deps.extraClientMetadata ?? extraClientMetadata,
    assertJwtClientAuthClaimsAndHeader,
    ...(deps.loadExistingGrant ? { loadExistingGrant: deps.loadExistingGrant } : {}),
    ...(deps.issueRefreshToken ? { issueRefreshToken: deps.issueRefreshToken } : {}),
    ...(deps.renderError ? { renderError: deps.renderError } : {}),
    ...(deps.acrValues ? { acrValues: deps.acrValues } : {}),
    // back-channel logout, jwks_uri, sector_identifier_uri, request_uri: public addresses only
    fetch: outboundFetch(config, deps.logger ?? fallbackLogger(config.logLevel)),
    rotateRefreshToken: true,
    conformIdTokenClaims: true,
    allowOmittingSingleRegisteredRedirectUri: false,
    ttl: {
      // A resource's (or the client's) TTL wins; 300 s is for audience-less tokens.
      AccessToken: (_ctx, token) => token.resourceServer?.accessTokenTTL ?? 300,
      ClientCredentials: (_ctx, token) => token.resourceServer?.accessTokenTTL ?? 300,
      AuthorizationCode: (_ctx, _code, client) => (profileOf(client as unknown as Parameters<typeof profileOf>[0]) === 'fapi2' ? FAPI2_CODE_TTL_SECONDS : 60),
      IdToken: 3600,
      Interaction: 3600,
      Session: 14 * 86400,
      Grant: 14 * 86400,
      RefreshToken: 14 * 86400,
      DeviceCode: 600,
      BackchannelAuthenticationRequest: 600,
      ...deps.ttl,
    },
  };
  const provider = new Provider(config.issuer, configuration);
  // No `provider.proxy`: the provider runs inside the host app's context, whose
  // ctx.ip is decided by TRUST_PROXY in src/http/client-address.ts alone.
  // Refresh rotation that survives a lost answer (delivery records, one retry):
  // it needs the adapter's database, so only with createAdapterFactory's adapter.
  const db = adapterDatabase(deps.adapter);
  const rotation = db
    ? refreshRotation(provider, { db, retrySeconds: config.refreshToken.retrySeconds, logger: deps.logger ?? fallbackLogger(config.logLevel) })
    : [];
  // every method Gatehouse replaces, in the seam's one order
  installPatches(provider, [...singleUsePatches(), ...(deps.patches?.(provider) ?? []), ...rotation]);
  return provider;
}

export type { KoaContextWithOIDC };
