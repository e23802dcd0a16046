// `gatehouse export`: the current resources, clients and roles in the config
// file format. Never secrets (only digests are stored, and they are not
// exported either), users or built-ins (the admin API resource and its role). Entries are sorted by id
// and only fields that differ from their default are written (required ones
// always), so exports are short and diff cleanly; applying an export plans
// nothing, because omitted fields mean their defaults.
import type { ClientView } from '../clients/store.ts';
import { CONSOLE_CLIENT_ID } from '../clients/console.ts';
import type { DbOrTx } from '../kernel/tx.ts';
import type { RoleView } from '../resources/roles.ts';
import { RESOURCE_TTL, type ResourceView } from '../resources/store.ts';
import type { FileClient, FileDocument, FileIdp, FileResource, FileRole } from './format.ts';
import { DEFAULT_IDP_SCOPES, type IdpView } from '../federation/store.ts';
import { loadCurrent } from './plan.ts';

const byKey = <T>(key: (v: T) => string) => (a: T, b: T) => (key(a) < key(b) ? -1 : key(a) > key(b) ? 1 : 0);

export function resourceEntry(r: ResourceView): FileResource {
  return {
    identifier: r.identifier,
    ...(r.name !== null && { name: r.name }),
    scopes: r.scopes,
    ...(r.accessTokenTtl !== RESOURCE_TTL.default && { ttl: r.accessTokenTtl }),
    ...(r.signingAlg !== 'RS256' && { signingAlg: r.signingAlg }),
    ...(r.servedBy.length > 0 && { servedBy: r.servedBy }),
    ...(r.requireRoles && { requireRoles: true }),
    ...(r.sensitiveScopes.length > 0 && { sensitive: r.sensitiveScopes }),
  };
}

export function clientEntry(c: ClientView): FileClient {
  const defaultAuth = c.public ? 'none' : 'client_secret_basic';
  return {
    id: c.id,
    name: c.name,
    ...(c.public && { public: true }),
    grants: c.grants,
    ...(c.redirectUris.length > 0 && { redirectUris: c.redirectUris }),
    ...(c.postLogoutRedirectUris.length > 0 && { postLogoutRedirectUris: c.postLogoutRedirectUris }),
    ...(c.scopes.length > 0 && { scopes: c.scopes }),
    ...(c.resources.length > 0 && { resources: c.resources }),
    ...(c.authMethod !== defaultAuth && { authMethod: c.authMethod }),
    ...(c.jwks !== null && { jwks: c.jwks }),
    ...(c.jwksUri !== null && { jwksUri: c.jwksUri }),
    ...(c.profile !== null && { profile: c.profile }),
    // fapi2 turns PAR and DPoP on by itself; written out all the same, so the file says what holds
    ...(c.requireDpop && { requireDpop: true }),
    ...(c.requirePar && { requirePar: true }),
    ...(c.firstParty && { firstParty: true }),
    ...(c.requireMfa && { requireMfa: true }),
    ...(c.backchannelLogoutUri !== null && { backchannelLogoutUri: c.backchannelLogoutUri }),
    ...(c.accessTokenTtl !== null && { accessTokenTtl: c.accessTokenTtl }),
    ...(c.idTokenTtl !== null && { idTokenTtl: c.idTokenTtl }),
    ...(c.refreshTokenTtl !== null && { refreshTokenTtl: c.refreshTokenTtl }),
    ...(c.disabled && { disabled: true }),
  };
}

export function roleEntry(r: RoleView): FileRole {
  return { name: r.name, resource: r.resource, scopes: r.scopes };
}

/** An idp without its secret: applying it to another database needs clientSecretEnv added. */
export function idpEntry(r: IdpView): FileIdp {
  const defaultScopes = r.scopes.length === DEFAULT_IDP_SCOPES.length && DEFAULT_IDP_SCOPES.every((s) => r.scopes.includes(s));
  return {
    name: r.name,
    issuer: r.issuer,
    clientId: r.clientId,
    ...(!defaultScopes && { scopes: r.scopes }),
    ...(r.domains.length > 0 && { domains: r.domains }),
    ...(r.disabled && { disabled: true }),
  };
}

/** The current state as a config document. */
export async function exportConfig(db: DbOrTx): Promise<FileDocument> {
  const current = await loadCurrent(db);
  return {
    resources: [...current.resources.values()]
      .filter((r) => !r.builtIn)
      .sort(byKey((r) => r.identifier))
      .map(resourceEntry),
    // the console's built-in client is Gatehouse's own, recreated at every start (src/clients/console.ts)
    clients: [...current.clients.values()].filter((c) => c.id !== CONSOLE_CLIENT_ID).sort(byKey((c) => c.id)).map(clientEntry),
    roles: [...current.roles.values()]
      .filter((r) => !r.builtIn)
      .sort(byKey((r) => r.name))
      .map(roleEntry),
    ...(current.idps.size > 0 && { idps: [...current.idps.values()].sort(byKey((r) => r.name)).map(idpEntry) }),
    // only when there are any, so exports of systems without policies stay as they were
    ...(current.policies.size > 0 && {
      policies: [...current.policies.values()].sort(byKey((p) => p.name)).map((p) => ({ ...p }) as Record<string, unknown>),
    }),
  };
}
