// RFC 8707 resource indicators: each API resource is an audience; a client
// gets JWT access tokens (RFC 9068) only for the resources it was granted and
// only with the scopes both it and the resource allow.
import { errors, type Configuration, type KoaContextWithOIDC } from 'oidc-provider';
import type { ClientRegistry } from '../clients/registry.ts';
import { allowedScopes, parseScopeParam } from '../resources/allowance.ts';
import type { ResourceCatalog } from '../resources/cache.ts';
import type { ClientRecord } from '../clients/store.ts';
import type { ResourceRecord } from '../resources/store.ts';

type ResourceIndicators = NonNullable<NonNullable<Configuration['features']>['resourceIndicators']>;

type Allowance = { list: string[]; joined: string };

export function resourceIndicators(registry: ClientRegistry, catalog: ResourceCatalog): ResourceIndicators {
  // client ∩ resource scopes, per pair of (immutable, cached) records: asked on every token request
  const allowances = new WeakMap<object, WeakMap<object, Allowance>>();
  const allowanceOf = (rec: ClientRecord, resource: ResourceRecord): Allowance => {
    let byResource = allowances.get(rec);
    if (!byResource) allowances.set(rec, (byResource = new WeakMap()));
    let a = byResource.get(resource);
    if (!a) {
      const list = allowedScopes(rec, resource);
      byResource.set(resource, (a = { list, joined: list.join(' ') }));
    }
    return a;
  };
  return {
    enabled: true,
    // client_credentials: a client with exactly one resource gets it by
    // default; otherwise it must name one (a token without an audience is
    // useless to a machine). A login flow that names no resource gets no
    // default: its access token is for userinfo (/me), as OpenID Connect
    // relying parties expect; it names `resource` to get an API's token.
    // (Token exchange has its own default: token-exchange.ts.)
    async defaultResource(ctx: KoaContextWithOIDC, client, oneOf) {
      if (oneOf) return oneOf;
      if (ctx.oidc.route !== 'token' || ctx.oidc.params?.grant_type !== 'client_credentials') return undefined;
      const rec = await registry.get(client.clientId);
      if (rec && rec.resources.length === 1) return rec.resources[0];
      if (Array.isArray(ctx.oidc.params.resource) && ctx.oidc.params.resource.length > 1) {
        throw new errors.InvalidTarget('only a single resource indicator value is supported for this grant type');
      }
      throw new errors.InvalidTarget('a resource parameter is required: this client has no single default resource');
    },
    // Code and refresh grants use the resource granted at the authorization step.
    useGrantedResource: () => true,
    async getResourceServerInfo(ctx, identifier, client) {
      const [resource, rec] = await Promise.all([catalog.get(identifier), registry.get(client.clientId)]);
      if (!resource || !rec || !rec.resources.includes(identifier)) {
        throw new errors.InvalidTarget('the client is not allowed to request tokens for this resource');
      }
      const allowed = allowanceOf(rec, resource);
      if (ctx.oidc.route === 'token' && ctx.oidc.params?.grant_type === 'client_credentials') {
        if (Array.isArray(ctx.oidc.params.resource) && ctx.oidc.params.resource.length > 1) {
          throw new errors.InvalidTarget('only a single resource indicator value is supported for this grant type');
        }
        // oidc-provider would silently drop scopes outside the allowance; refuse them.
        const requested = parseScopeParam(ctx.oidc.params.scope as string | undefined);
        const denied = requested.find((s) => !allowed.list.includes(s));
        if (denied) throw new errors.InvalidScope('requested scope is not allowed', denied);
        // Like Auth0: no scope asked for means every scope the client holds on this API.
        if (requested.length === 0) ctx.oidc.params.scope = allowed.joined;
      }
      return {
        audience: resource.identifier,
        scope: allowed.joined,
        accessTokenTTL: rec.accessTokenTtl ?? resource.accessTokenTtl,
        accessTokenFormat: 'jwt',
        jwt: { sign: { alg: resource.signingAlg } },
      };
    },
  };
}
