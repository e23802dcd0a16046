// What `gatehouse apply` would do: the desired state of a file against the
// current state of the database.
//
// - An entry whose id is not in the database is created; one whose fields
//   differ is updated (`changes` lists the file's field names); an equal one
//   plans nothing. Omitted optional fields mean their default (format.ts), so
//   applying the same file twice, or applying an export, plans nothing.
//   Lists are compared as sets (scopes, grants, URIs, servedBy…: order
//   carries no meaning).
// - Only with `prune` is anything not in the file deleted, and never a
//   built-in (the admin API resource urn:gatehouse:admin and its role
//   gatehouse-admin).
// - A built-in may appear in a file only exactly as it is; any difference is
//   an error naming the field (apply never changes a built-in; `gatehouse
//   resources update` can change the resource's ttl, signingAlg and name).
// - References must resolve in the state after the apply: a client's
//   resources, a resource's servedBy and a role's resource and scopes name
//   entries of the file or (without prune) of the database.
// - An idp (upstream identity provider) is identified by its name. Its
//   client secret is compared when the file names one (clientSecretEnv,
//   resolved by apply.ts): a different secret is the change `clientSecret`.
//   A new idp without clientSecretEnv is an error.
import { CONSOLE_CLIENT_ID } from '../clients/console.ts';
import { CLIENT_SETTINGS, listClients, type ClientView } from '../clients/store.ts';
import { everyPage } from '../kernel/pagination.ts';
import type { DbOrTx } from '../kernel/tx.ts';
import { listRoles, type RoleView } from '../resources/roles.ts';
import type { Policy } from '../access/policies.ts';
import { listPolicies } from '../access/store.ts';
import { listResources, type ResourceView } from '../resources/store.ts';
import { everyPage as everyIdpPage } from '../kernel/pagination.ts';
import { idpSecret, listIdps, type IdpView } from '../federation/store.ts';
import { entryError, type Desired, type DesiredClient, type DesiredIdp, type DesiredResource, type DesiredRole, type Kind } from './format.ts';

export interface PlanEntry {
  kind: Kind;
  /** identifier / client id / role name */
  id: string;
}
export interface PlanUpdate extends PlanEntry {
  /** the file's names of the fields that change */
  changes: string[];
}
export interface Plan {
  create: PlanEntry[];
  update: PlanUpdate[];
  delete: PlanEntry[];
}

export interface Current {
  resources: Map<string, ResourceView>;
  clients: Map<string, ClientView>;
  roles: Map<string, RoleView>;
  idps: Map<string, IdpView>;
  /** the stored client secret of each idp, by name (only when loaded with the KEK) */
  idpSecrets: Map<string, string>;
  policies: Map<string, Policy>;
}

export async function loadCurrent(db: DbOrTx, kek?: Buffer): Promise<Current> {
  const resources = new Map((await everyPage((page) => listResources(db, page))).map((r) => [r.identifier, r] as const));
  const clients = new Map((await everyPage((page) => listClients(db, page))).map((c) => [c.id, c] as const));
  const roles = new Map((await listRoles(db)).map((r) => [r.name, r] as const));
  const idps = new Map((await everyIdpPage((page) => listIdps(db, page))).map((r) => [r.name, r] as const));
  const idpSecrets = new Map<string, string>();
  if (kek) {
    for (const row of await db.upstreamIdp.findMany()) idpSecrets.set(row.name, idpSecret(row, kek));
  }
  const policies = new Map((await listPolicies(db)).map((p) => [p.name, p] as const));
  return { resources, clients, roles, idps, idpSecrets, policies };
}

// ------------------------------------------------------------- comparison

/** JSON with object keys sorted (jsonb does not keep key order). */
function canonical(v: unknown): string {
  if (Array.isArray(v)) return `[${v.map(canonical).join(',')}]`;
  if (v && typeof v === 'object') {
    return `{${Object.keys(v)
      .sort()
      .map((k) => `${JSON.stringify(k)}:${canonical((v as Record<string, unknown>)[k])}`)
      .join(',')}}`;
  }
  return JSON.stringify(v) ?? 'null';
}

function same(a: unknown, b: unknown, asSet: boolean): boolean {
  if (asSet && Array.isArray(a) && Array.isArray(b)) {
    const sa = new Set(a.map(canonical));
    const sb = new Set(b.map(canonical));
    return sa.size === sb.size && [...sa].every((x) => sb.has(x));
  }
  return canonical(a) === canonical(b);
}

/** The fields of each kind, in the file's order; `set` ones are compared as sets. */
const RESOURCE_FIELDS: { field: keyof DesiredResource; set?: boolean; current: (r: ResourceView) => unknown }[] = [
  { field: 'name', current: (r) => r.name },
  { field: 'scopes', set: true, current: (r) => r.scopes },
  { field: 'ttl', current: (r) => r.accessTokenTtl },
  { field: 'signingAlg', current: (r) => r.signingAlg },
  { field: 'servedBy', set: true, current: (r) => r.servedBy },
  { field: 'requireRoles', current: (r) => r.requireRoles },
  { field: 'sensitive', set: true, current: (r) => r.sensitiveScopes },
];

const CLIENT_LISTS = new Set(['grants', 'redirectUris', 'postLogoutRedirectUris', 'scopes', 'resources']);

export function resourceChanges(want: DesiredResource, have: ResourceView): string[] {
  return RESOURCE_FIELDS.filter((f) => !same(want[f.field], f.current(have), f.set ?? false)).map((f) => f.field);
}

export function clientChanges(want: DesiredClient, have: ClientView): string[] {
  return CLIENT_SETTINGS.filter((f) => !same(want[f], have[f], CLIENT_LISTS.has(f)));
}

export function idpChanges(want: DesiredIdp, have: IdpView, wantSecret: string | undefined, haveSecret: string | undefined): string[] {
  const out: string[] = [];
  if (want.issuer !== have.issuer) out.push('issuer');
  if (want.clientId !== have.clientId) out.push('clientId');
  if (!same(want.scopes, have.scopes, true)) out.push('scopes');
  if (!same(want.domains, have.domains, true)) out.push('domains');
  if (want.disabled !== have.disabled) out.push('disabled');
  if (wantSecret !== undefined && wantSecret !== haveSecret) out.push('clientSecret');
  return out;
}

/** A policy's fields that differ (kind and parameters; compared as sets for client lists). */
export function policyChanges(want: Policy, have: Policy): string[] {
  const w = want as unknown as Record<string, unknown>;
  const h = have as unknown as Record<string, unknown>;
  const keys = [...new Set([...Object.keys(w), ...Object.keys(h)])].filter((k) => k !== 'name');
  return keys.filter((k) => !same(w[k], h[k], k === 'clients'));
}

export function roleChanges(want: DesiredRole, have: RoleView): string[] {
  const out: string[] = [];
  if (want.resource !== have.resource) out.push('resource');
  if (!same(want.scopes, have.scopes, true)) out.push('scopes');
  return out;
}

// ---------------------------------------------------------------- planning

/**
 * The plan for `desired` against `current`. Throws a DeclarativeError naming
 * the entry and field for a changed built-in or a reference that would not
 * resolve after the apply.
 */
export function computePlan(desired: Desired, current: Current, opts: { prune: boolean; idpSecrets?: Map<string, string> }): Plan {
  checkReferences(desired, current, opts);
  const plan: Plan = { create: [], update: [], delete: [] };
  const fail = entryError.bind(null, desired.source);

  for (const { ref, value } of desired.resources) {
    const have = current.resources.get(value.identifier);
    if (!have) {
      plan.create.push({ kind: 'resource', id: value.identifier });
      continue;
    }
    const changes = resourceChanges(value, have);
    if (have.builtIn) {
      if (changes.length > 0) {
        throw fail(ref, changes[0], `differs from the built-in resource's; apply never changes a built-in (gatehouse resources update can change its ttl, signingAlg and name)`);
      }
      continue;
    }
    if (changes.length > 0) plan.update.push({ kind: 'resource', id: value.identifier, changes });
  }
  for (const { value } of desired.clients) {
    const have = current.clients.get(value.id);
    if (!have) plan.create.push({ kind: 'client', id: value.id });
    else {
      const changes = clientChanges(value, have);
      if (changes.length > 0) plan.update.push({ kind: 'client', id: value.id, changes });
    }
  }
  for (const { ref, value } of desired.roles) {
    const have = current.roles.get(value.name);
    if (!have) {
      plan.create.push({ kind: 'role', id: value.name });
      continue;
    }
    const changes = roleChanges(value, have);
    if (have.builtIn) {
      if (changes.length > 0) throw fail(ref, changes[0], `differs from the built-in role's; apply never changes a built-in`);
      continue;
    }
    if (changes.length > 0) plan.update.push({ kind: 'role', id: value.name, changes });
  }

  for (const { ref, value } of desired.idps) {
    const have = current.idps.get(value.name);
    if (!have) {
      if (value.clientSecretEnv === undefined) {
        throw fail(ref, 'clientSecretEnv', 'is required for a new identity provider: name the environment variable that holds its client secret (secrets never appear in config files)');
      }
      plan.create.push({ kind: 'idp', id: value.name });
      continue;
    }
    const changes = idpChanges(value, have, opts.idpSecrets?.get(value.name), current.idpSecrets.get(value.name));
    if (changes.length > 0) plan.update.push({ kind: 'idp', id: value.name, changes });
  }

  for (const { value } of desired.policies) {
    const have = current.policies.get(value.name);
    if (!have) plan.create.push({ kind: 'policy', id: value.name });
    else {
      const changes = policyChanges(value, have);
      if (changes.length > 0) plan.update.push({ kind: 'policy', id: value.name, changes });
    }
  }

  if (opts.prune) {
    const sorted = (ids: Iterable<string>) => [...ids].sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
    const roles = new Set(desired.roles.map((e) => e.value.name));
    const clients = new Set(desired.clients.map((e) => e.value.id));
    const resources = new Set(desired.resources.map((e) => e.value.identifier));
    // dependency order: policies, roles, then clients, then resources
    const policies = new Set(desired.policies.map((e) => e.value.name));
    for (const id of sorted(current.policies.keys())) if (!policies.has(id)) plan.delete.push({ kind: 'policy', id });
    for (const id of sorted(current.roles.keys())) if (!roles.has(id) && !current.roles.get(id)!.builtIn) plan.delete.push({ kind: 'role', id });
    // (the console's built-in client is Gatehouse's own: never pruned)
    for (const id of sorted(current.clients.keys())) if (!clients.has(id) && id !== CONSOLE_CLIENT_ID) plan.delete.push({ kind: 'client', id });
    const idps = new Set(desired.idps.map((e) => e.value.name));
    for (const id of sorted(current.idps.keys())) if (!idps.has(id)) plan.delete.push({ kind: 'idp', id });
    for (const id of sorted(current.resources.keys())) {
      if (!resources.has(id) && !current.resources.get(id)!.builtIn) plan.delete.push({ kind: 'resource', id });
    }
  }
  return plan;
}

/** Every reference must name something that exists once the plan has run. */
function checkReferences(desired: Desired, current: Current, opts: { prune: boolean }): void {
  const fail = entryError.bind(null, desired.source);
  const pruned = ' (not in the file, so --prune deletes it)';

  // resource identifier → its scopes after the apply
  const resources = new Map<string, string[]>();
  for (const r of current.resources.values()) if (!opts.prune || r.builtIn) resources.set(r.identifier, r.scopes);
  for (const { value } of desired.resources) resources.set(value.identifier, value.scopes);
  const clients = new Set<string>(opts.prune ? [] : current.clients.keys());
  for (const { value } of desired.clients) clients.add(value.id);

  const unknown = (what: string, id: string, existsNow: boolean) => `unknown ${what} '${id}'${existsNow ? pruned : ''}`;

  for (const { ref, value } of desired.resources) {
    value.servedBy.forEach((id, i) => {
      if (!clients.has(id)) throw fail(ref, `servedBy[${i}]`, unknown('client', id, current.clients.has(id)));
    });
  }
  for (const { ref, value } of desired.clients) {
    value.resources.forEach((id, i) => {
      if (!resources.has(id)) throw fail(ref, `resources[${i}]`, unknown('resource', id, current.resources.has(id)));
    });
  }
  for (const { ref, value } of desired.roles) {
    const offered = resources.get(value.resource);
    if (!offered) throw fail(ref, 'resource', unknown('resource', value.resource, current.resources.has(value.resource)));
    const set = new Set(offered);
    value.scopes.forEach((s, i) => {
      if (!set.has(s)) throw fail(ref, `scopes[${i}]`, `'${s}' is not a scope of ${value.resource} (it offers: ${offered.join(' ')})`);
    });
  }
}
