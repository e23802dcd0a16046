// RFC 8693 token exchange: on-behalf-of calls between services.
//
// POST /token with grant_type=urn:ietf:params:oauth:grant-type:token-exchange.
// The actor is the authenticated client (ordinary client authentication). It
// presents a Gatehouse JWT access token as `subject_token` and names the
// downstream API with `resource` (`audience` is an alias). The answer is a JWT
// access token (RFC 9068) for that API with the subject's `sub`, `client_id` =
// the actor and `act: {sub: <actor>, act: <the subject token's act, if any>}`.
//
// Rules (PRODUCT.md, "Token exchange"), in the order they are checked:
//   malformed request (missing/unsupported token types, actor_token) → invalid_request
//   the actor lacks the grant → unauthorized_client (oidc-provider's grant
//     check, renamed by token-errors.ts)
//   subject token not a Gatehouse access token that still stands (the same
//     rule as introspection: checkAccessToken — unexpired, unrevoked, its
//     client enabled, its grant alive, its person enabled), or neither
//     addressed to an API the actor serves (`servedBy`) nor issued to the
//     actor itself → invalid_grant
//   downstream API unknown or outside the actor's `resources` → invalid_target
//   a scope outside the actor's allowance on that API, or (when the API is the
//     subject token's own audience) beyond the subject token's scopes → invalid_scope
//
// Choices:
//   - One downstream API per request: `resource` and `audience` together must
//     name the same API; several values → invalid_target. With neither, the
//     actor's single resource is used if it has exactly one.
//   - No `scope` asked for: every scope of the actor's allowance on the API
//     (capped by the subject token's scopes for its own audience). If that
//     leaves no scope at all the request is refused (invalid_scope) rather
//     than minting a token that allows nothing.
//   - Lifetime: the actor's accessTokenTtl override, else the API's TTL, and
//     never beyond the subject token's `exp` (an exchange cannot extend a
//     delegation; Auth0/Keycloak do not cap, we choose the safer rule).
//   - DPoP: a proof sent with the request binds the new token (`cnf.jkt`,
//     token_type DPoP), checked and replay-protected like the built-in grants;
//     an actor registered with requireDpop must send one (invalid_dpop_proof).
//     A DPoP-bound subject token is accepted: RFC 8693 has the actor present
//     it, and the actor cannot hold the original caller's key.
//   - A person's subject token (one issued within a grant): on an API created
//     with requireRoles the scopes are also bounded by the person's roles on
//     it (the front door's rule), with a `roles` claim; and the new token is
//     tied to the same grant (delegateGrant), so whatever ends the grant
//     (logout, revoke-sessions, disable, reuse, client deletion) ends every
//     token exchanged from it, down the whole chain.
//   - Hot path: a machine's subject token costs no I/O (every check is in
//     memory); a person's costs one read of its grant row, the role look-up
//     on requireRoles APIs, and one row for the new token (plus the DPoP
//     replay record when a proof is sent, as for every grant).
//
// `act` (and `roles`) reach the minted JWT through the provider's
// extraTokenClaims (exchangeTokenClaims, composed in app.ts); the DPoP proof
// check is the one the built-in grants use (src/oidc/internals.ts).
import { errors, type ResourceServerInstance, type TokenEndpointGrantContext } from 'oidc-provider';
import type Provider from 'oidc-provider';
import type { ClientRegistry } from '../clients/registry.ts';
import type { ClientRecord } from '../clients/store.ts';
import type { Db } from '../db/client.ts';
import { allowedScopes, parseScopeParam, roleNamesFor } from '../resources/allowance.ts';
import type { ResourceCatalog } from '../resources/cache.ts';
import { rolesForAccount } from '../resources/roles.ts';
import type { ResourceRecord } from '../resources/store.ts';
import { checkAccessToken, delegateGrant, isRefusal, type StandingToken } from './introspection.ts';
import { checkDpopReplay, validateDpop } from './internals.ts';

export const TOKEN_EXCHANGE_GRANT = 'urn:ietf:params:oauth:grant-type:token-exchange';
export const ACCESS_TOKEN_TYPE = 'urn:ietf:params:oauth:token-type:access_token';
export const JWT_TOKEN_TYPE = 'urn:ietf:params:oauth:token-type:jwt';

/** What a client may ask for as `requested_token_type`; the answer is always an access token (a JWT). */
const REQUESTABLE_TOKEN_TYPES: ReadonlySet<unknown> = new Set([ACCESS_TOKEN_TYPE, JWT_TOKEN_TYPE]);

const PARAMETERS = [
  'subject_token',
  'subject_token_type',
  'actor_token',
  'actor_token_type',
  'requested_token_type',
  'resource',
  'audience',
  'scope',
] as const;
/** Repeats of these are not a malformed request but a request for several APIs (invalid_target). */
const REPEATABLE = ['resource', 'audience'] as const;

export interface TokenExchangeDeps {
  db: Db;
  clients: ClientRegistry;
  resources: ResourceCatalog;
}

/** RFC 8693 §4.1 actor claim; `act` nests the previous actors, most recent outermost. */
export interface ActClaim {
  sub: string;
  act?: Record<string, unknown>;
}

type ExchangeParams = { [K in (typeof PARAMETERS)[number]]?: unknown };
type ExchangeContext = TokenEndpointGrantContext<ExchangeParams>;
type AccessTokenInit = ConstructorParameters<Provider['AccessToken']>[0];

/** Claims of the access tokens being minted by an exchange (`act`, and `roles` for a person on a requireRoles API), by token object. */
const exchangeClaims = new WeakMap<object, { act: ActClaim; roles?: string[] }>();

/** The subject token, standing: only what the exchange needs. */
interface Subject {
  sub: string;
  clientId: string;
  aud: string;
  exp: number;
  scopes: string[];
  act: Record<string, unknown> | undefined;
  /** a person's token: its grant and the person */
  grant?: { grantId: string; accountId: string | undefined };
}

/**
 * The claims an exchange adds to the token it mints (`act`, and `roles` for a
 * person on a requireRoles API); undefined for every other token. Part of
 * the provider's extraTokenClaims (configuration, composed in app.ts).
 */
export function exchangeTokenClaims(token: object): Record<string, unknown> | undefined {
  const claims = exchangeClaims.get(token);
  return claims ? { act: claims.act, ...(claims.roles ? { roles: claims.roles } : {}) } : undefined;
}

/** invalid_grant with a description the caller can act on (oidc-provider's own text is generic). */
function invalidGrant(description: string): InstanceType<typeof errors.InvalidGrant> {
  return Object.assign(new errors.InvalidGrant(description), { error_description: description });
}

const isRecord = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);
const nonEmpty = (v: unknown): v is string => typeof v === 'string' && v.length > 0;

/** The parameter's values: a repeatable parameter arrives as a string or an array of them. */
function values(v: unknown): string[] {
  if (typeof v === 'string') return v ? [v] : [];
  if (Array.isArray(v)) return v.filter(nonEmpty);
  return [];
}

function checkRequest(params: ExchangeContext['oidc']['params']): string {
  if (params.actor_token !== undefined || params.actor_token_type !== undefined) {
    throw new errors.InvalidRequest('actor_token is not supported: the authenticated client is the actor');
  }
  if (!nonEmpty(params.subject_token)) throw new errors.InvalidRequest("missing required parameter 'subject_token'");
  if (params.subject_token_type === undefined) throw new errors.InvalidRequest("missing required parameter 'subject_token_type'");
  if (params.subject_token_type !== ACCESS_TOKEN_TYPE) {
    throw new errors.InvalidRequest(`unsupported subject_token_type: only ${ACCESS_TOKEN_TYPE} is accepted`);
  }
  if (params.requested_token_type !== undefined && !REQUESTABLE_TOKEN_TYPES.has(params.requested_token_type)) {
    throw new errors.InvalidRequest(`unsupported requested_token_type: only ${ACCESS_TOKEN_TYPE} or ${JWT_TOKEN_TYPE} can be issued`);
  }
  return params.subject_token;
}

/** The downstream API's identifier: `resource` / `audience` (one API), else the actor's single resource. */
function downstreamIdentifier(params: ExchangeContext['oidc']['params'], actor: Readonly<ClientRecord>): string {
  const named = [...new Set([...values(params.resource), ...values(params.audience)])];
  if (named.length > 1) {
    throw new errors.InvalidTarget('name exactly one downstream API: resource and audience must agree and each be given once');
  }
  if (named[0] !== undefined) return named[0];
  if (actor.resources.length === 1 && actor.resources[0] !== undefined) return actor.resources[0];
  throw new errors.InvalidTarget('a resource (or audience) parameter is required: this client has no single default resource');
}

/**
 * The scopes to grant, in the API's order; invalid_scope if any requested one
 * is not allowed. `roleScopes`: for a person on a requireRoles API, what
 * their roles on it grant (undefined otherwise).
 */
function grantedScopes(
  requestedParam: unknown,
  allowance: readonly string[],
  subject: Subject,
  api: Readonly<ResourceRecord>,
  roleScopes: ReadonlySet<string> | undefined,
): string[] {
  const sameAudience = api.identifier === subject.aud;
  const subjectScopes = new Set(subject.scopes);
  let ceiling = sameAudience ? allowance.filter((s) => subjectScopes.has(s)) : [...allowance];
  if (roleScopes) ceiling = ceiling.filter((s) => roleScopes.has(s));
  const requested = parseScopeParam(typeof requestedParam === 'string' ? requestedParam : undefined);
  for (const scope of requested) {
    if (!allowance.includes(scope)) throw new errors.InvalidScope('requested scope is not allowed for this client on this API', scope);
    if (sameAudience && !subjectScopes.has(scope)) {
      throw new errors.InvalidScope("requested scope exceeds the subject_token's scopes (same API: an exchange cannot widen a token)", scope);
    }
    if (roleScopes && !roleScopes.has(scope)) {
      throw new errors.InvalidScope("requested scope is not granted by the person's roles on this API", scope);
    }
  }
  const granted = requested.length > 0 ? ceiling.filter((s) => requested.includes(s)) : ceiling;
  if (granted.length === 0) {
    throw new errors.InvalidScope('no scope of this API can be granted to this client for this subject_token', '');
  }
  return granted;
}

export function registerTokenExchange(provider: Provider, deps: TokenExchangeDeps): void {
  /** The subject token, if it still stands (the same rule as introspection and the admin API). */
  async function subjectOf(token: string): Promise<Subject> {
    const standing = await checkAccessToken(provider, token);
    if (isRefusal(standing)) throw invalidGrant(`subject_token ${standing.refused}`);
    const { sub, aud, exp, client_id: clientId, scope, act } = standing.payload;
    if (!nonEmpty(sub) || !nonEmpty(aud) || (act !== undefined && !(isRecord(act) && nonEmpty(act.sub)))) {
      throw invalidGrant('subject_token is not a valid access token issued by this server');
    }
    return {
      sub,
      aud,
      exp,
      clientId,
      scopes: parseScopeParam(typeof scope === 'string' ? scope : undefined),
      act: act as Record<string, unknown> | undefined,
      ...grantOf(standing),
    };
  }

  async function exchange(ctx: ExchangeContext): Promise<void> {
    const { client, params } = ctx.oidc;
    const actor = await deps.clients.get(client.clientId);
    if (!actor || actor.disabled) throw new errors.InvalidClient('client is unknown or disabled');

    const subjectToken = checkRequest(params);
    // A malformed proof is refused before anything else, as by the built-in grants.
    const dPoP = await validateDpop(provider, ctx);

    // The subject token: ours, standing, meant for this actor.
    const subject = await subjectOf(subjectToken);
    if (subject.clientId !== actor.id) {
      const servedApi = await deps.resources.get(subject.aud);
      if (!servedApi || !servedApi.servedBy.includes(actor.id)) {
        throw invalidGrant('subject_token is neither addressed to an API this client serves nor issued to this client');
      }
    }

    // The downstream API and the scopes, within the actor's own allowance
    // (and, for a person on a requireRoles API, their roles).
    const identifier = downstreamIdentifier(params, actor);
    const api = await deps.resources.get(identifier);
    if (!api || !actor.resources.includes(api.identifier)) {
      throw new errors.InvalidTarget('this client is not allowed to request tokens for this API');
    }
    const allowance = allowedScopes(actor, api);
    const person = subject.grant?.accountId;
    const roles = person !== undefined && api.requireRoles ? await rolesForAccount(deps.db, person, api.identifier) : undefined;
    const roleScopes = roles ? new Set(roles.flatMap((r) => r.scopes)) : undefined;
    const scopes = grantedScopes(params.scope, allowance, subject, api, roleScopes);

    const now = Math.floor(Date.now() / 1000);
    const apiTtl = actor.accessTokenTtl ?? api.accessTokenTtl;
    const ttl = Math.min(apiTtl, subject.exp - now);
    if (ttl < 1) throw invalidGrant('subject_token has expired');

    if (!dPoP && actor.requireDpop) throw new errors.InvalidDpopProof('DPoP proof JWT not provided');
    if (dPoP) await checkDpopReplay(provider, ctx, dPoP, actor.id, errors.InvalidDpopProof);

    const resourceServer: ResourceServerInstance = {
      audience: api.identifier,
      scope: allowance.join(' '),
      accessTokenTTL: apiTtl,
      accessTokenFormat: 'jwt',
      jwt: { sign: { alg: api.signingAlg } },
      scopes: new Set(allowance),
      identifier: () => api.identifier,
    };
    const init: Omit<AccessTokenInit, 'grantId'> = {
      client,
      // the subject's `sub` (a person's account id, or a client id for a machine subject)
      accountId: subject.sub,
      gty: TOKEN_EXCHANGE_GRANT,
      scope: scopes.join(' '),
      resourceServer,
      iat: now,
      exp: now + ttl,
      expiresIn: ttl,
    };
    // Not a token of the subject's grant (no consent or session of the actor's
    // to tie it to), but it lives only as long as that grant does.
    const token = new provider.AccessToken(init as AccessTokenInit);
    if (subject.grant) delegateGrant(token, subject.grant.grantId, subject.grant.accountId);
    if (dPoP) token.setThumbprint('jkt', dPoP.thumbprint);
    exchangeClaims.set(token, {
      act: subject.act ? { sub: actor.id, act: subject.act } : { sub: actor.id },
      ...(roles ? { roles: roleNamesFor(api, roles) } : {}),
    });

    ctx.oidc.entity('AccessToken', token);
    const value = await token.save();
    ctx.body = {
      access_token: value,
      issued_token_type: ACCESS_TOKEN_TYPE,
      token_type: token.tokenType,
      expires_in: ttl,
      scope: token.scope,
    };
  }

  provider.registerGrantType<ExchangeParams>(TOKEN_EXCHANGE_GRANT, exchange, PARAMETERS, REPEATABLE);
}

function grantOf(standing: StandingToken): Pick<Subject, 'grant'> {
  const b = standing.binding;
  return b ? { grant: { grantId: b.grantId, accountId: standing.accountId } } : {};
}
