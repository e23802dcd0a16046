// The reachability model: who can get a token for which API and scope, and how.
// Pure functions over a snapshot of the registry (clients, API resources,
// roles); no I/O (load.ts builds the snapshot from the database).
//
// It follows the token rules (PRODUCT.md "Token rules", src/resources/allowance.ts,
// src/oidc/resource-indicators.ts, src/oidc/token-exchange.ts) exactly:
//
//   allowance(C, R)   = C.scopes ∩ R.scopes when R is in C.resources, else ∅
//                       (disabled clients have none: they get invalid_client)
//
//   client_credentials  a client with that grant gets, for each API of its
//                       allowance, a token with exactly that allowance (chain 0).
//   sign_in             a person signing in through a client with
//                       authorization_code gets the client's allowance; on an API
//                       with requireRoles only what their roles on it grant. No
//                       scope left → no token, nothing further.
//   exchange            a client S with the token-exchange grant holding a
//                       token for API R that S serves (R.servedBy) — or one
//                       issued to S itself — gets a token for any other API R'
//                       of its own allowance with allowance(S, R') (for a person
//                       on a requireRoles R': ∩ their roles on R'). Exchanging
//                       for the subject's own API never widens it, so the model
//                       ignores it. Each exchange adds 1 to the chain.
//
// Chains are followed transitively, breadth first: each API is expanded once
// per principal, so cycles in servedBy terminate, and the path recorded for a
// (principal, API, scope) is a shortest one. The longest simple chain is
// computed separately (longestChain).
//
// Principals:
//   client:<id>   a machine holding the client's credentials: client_credentials
//                 tokens, plus the tokens its APIs receive from callers, which
//                 it may exchange ("served_token"), plus everything downstream;
//   role:<name>   a person holding that role, signing in through any client;
//   people        any person who signs in, holding no role.
// A person with several roles reaches at least the union of what each of
// their roles reaches (the map lists roles one by one).

export const TOKEN_EXCHANGE = 'urn:ietf:params:oauth:grant-type:token-exchange';

export interface ClientNode {
  id: string;
  grants: readonly string[];
  scopes: readonly string[];
  resources: readonly string[];
  disabled?: boolean;
}

export interface ApiNode {
  identifier: string;
  scopes: readonly string[];
  servedBy: readonly string[];
  requireRoles?: boolean;
  sensitiveScopes?: readonly string[];
}

export interface RoleNode {
  name: string;
  resource: string;
  scopes: readonly string[];
}

/** The registry as the model sees it. */
export interface Registry {
  clients: readonly ClientNode[];
  apis: readonly ApiNode[];
  roles: readonly RoleNode[];
}

/** One step of a path: how a token for `api` came to be. */
export type Hop =
  | { via: 'client_credentials'; client: string; api: string }
  | { via: 'sign_in'; client: string; api: string }
  | { via: 'served_token'; client: string; api: string }
  | { via: 'exchange'; actor: string; from: string; api: string };

/** A principal reaching one scope of one API, by a shortest path. */
export interface Reach {
  principal: string;
  api: string;
  scope: string;
  sensitive: boolean;
  /** number of token exchanges on the path */
  chain: number;
  path: readonly Hop[];
}

interface Edge {
  actor: string;
  to: string;
  scopes: readonly string[];
}

/** The registry, indexed: what every query starts from. */
export interface Model {
  registry: Registry;
  /** enabled clients by id */
  clients: Map<string, ClientNode>;
  /** their ids, sorted */
  clientIds: readonly string[];
  apis: Map<string, ApiNode>;
  roles: readonly RoleNode[];
  /** allowance per enabled client: API → scopes (API order), only non-empty ones */
  allowance: Map<string, Map<string, readonly string[]>>;
  /** exchange edges out of each API (by the enabled servers that have the grant) */
  edges: Map<string, Edge[]>;
  /** the same edges, by the API they lead to */
  edgesInto: Map<string, (Edge & { from: string })[]>;
  /** sensitive (api \0 scope) keys */
  sensitive: Set<string>;
  /** memo of downstream(): per API */
  downstream: Map<string, Map<string, Found>>;
  /** memo of what any person reaches */
  people: PeopleReach | undefined;
}

interface PeopleReach {
  found: Map<string, Found>;
  expandedAt: Map<string, { depth: number; path: PathNode | undefined }>;
}

type Gate = (api: ApiNode, scopes: readonly string[]) => readonly string[];

const key = (api: string, scope: string) => `${api}\u0000${scope}`;
export const byText = (a: string, b: string) => (a < b ? -1 : a > b ? 1 : 0);

function allowanceOf(c: ClientNode, apis: Map<string, ApiNode>): Map<string, readonly string[]> {
  const out = new Map<string, readonly string[]>();
  const mine = new Set(c.scopes);
  for (const id of c.resources) {
    const api = apis.get(id);
    if (!api || out.has(id)) continue;
    const scopes = [...new Set(api.scopes.filter((s) => mine.has(s)))];
    if (scopes.length > 0) out.set(id, scopes);
  }
  return out;
}

/** Indexes a registry. Disabled clients are left out (they get no token at all). */
export function buildModel(registry: Registry): Model {
  const apis = new Map(registry.apis.map((a) => [a.identifier, a] as const));
  const clients = new Map<string, ClientNode>();
  for (const c of registry.clients) if (!c.disabled) clients.set(c.id, c);
  const allowance = new Map<string, Map<string, readonly string[]>>();
  for (const c of clients.values()) allowance.set(c.id, allowanceOf(c, apis));
  const edges = new Map<string, Edge[]>();
  const sensitive = new Set<string>();
  for (const api of apis.values()) {
    for (const s of api.sensitiveScopes ?? []) if (api.scopes.includes(s)) sensitive.add(key(api.identifier, s));
    const out: Edge[] = [];
    for (const serverId of [...new Set(api.servedBy)].sort(byText)) {
      const server = clients.get(serverId);
      if (!server || !server.grants.includes(TOKEN_EXCHANGE)) continue;
      for (const [to, scopes] of allowance.get(serverId)!) if (to !== api.identifier) out.push({ actor: serverId, to, scopes });
    }
    if (out.length > 0) edges.set(api.identifier, out);
  }
  const edgesInto = new Map<string, (Edge & { from: string })[]>();
  for (const [from, out] of edges) {
    for (const e of out) {
      let list = edgesInto.get(e.to);
      if (!list) edgesInto.set(e.to, (list = []));
      list.push({ ...e, from });
    }
  }
  return { registry, clients, clientIds: [...clients.keys()].sort(byText), apis, roles: registry.roles, allowance, edges, edgesInto, sensitive, downstream: new Map(), people: undefined };
}

// ------------------------------------------------------------ exploration

/** A path as a linked list, most recent hop last (shared between the ways that extend it). */
interface PathNode {
  hop: Hop;
  prev: PathNode | undefined;
  length: number;
}
const extend = (prev: PathNode | undefined, hop: Hop): PathNode => ({ hop, prev, length: (prev?.length ?? 0) + 1 });
function hopsOf(node: PathNode | undefined, prefix: readonly Hop[] = []): Hop[] {
  const out = new Array<Hop>(prefix.length + (node?.length ?? 0));
  prefix.forEach((h, i) => (out[i] = h));
  for (let n = node, i = out.length - 1; n; n = n.prev, i--) out[i] = n.hop;
  return out;
}

const NO_HOPS: readonly Hop[] = Object.freeze([]);

interface Candidate {
  api: string;
  scopes: readonly string[];
  path: PathNode | undefined;
}

interface Found {
  api: string;
  scope: string;
  chain: number;
  /** hops before `tail` (a start's own hops) */
  prefix: readonly Hop[];
  tail: PathNode | undefined;
}

/**
 * Breadth-first over tokens: `layers[d]` are tokens after d exchanges.
 * Returns (api \0 scope) → the first (shortest) way found.
 */
function explore(
  m: Model,
  starts: Candidate[][],
  gate: Gate,
  expandedAt: Map<string, { depth: number; path: PathNode | undefined }> = new Map(),
  /** APIs not worth expanding at that depth (already expanded as early by a wider search) */
  known?: (api: string, depth: number) => boolean,
): Map<string, Found> {
  const found = new Map<string, Found>();
  const expanded = { has: (api: string) => expandedAt.has(api) };
  const layers = starts.map((l) => [...l]);
  for (let depth = 0; depth < layers.length; depth++) {
    const layer = layers[depth]!;
    for (const cand of layer) {
      const api = m.apis.get(cand.api);
      if (!api) continue;
      const scopes = gate(api, cand.scopes);
      if (scopes.length === 0) continue;
      for (const scope of scopes) {
        const k = key(cand.api, scope);
        if (!found.has(k)) found.set(k, { api: cand.api, scope, chain: depth, prefix: NO_HOPS, tail: cand.path });
      }
      if (expanded.has(cand.api)) continue;
      expandedAt.set(cand.api, { depth, path: cand.path });
      if (known?.(cand.api, depth)) continue;
      const out = m.edges.get(cand.api);
      if (!out) continue;
      const next = (layers[depth + 1] ??= []);
      for (const e of out) {
        if (expanded.has(e.to) && e.scopes.every((s) => found.has(key(e.to, s)))) continue;
        next.push({ api: e.to, scopes: e.scopes, path: extend(cand.path, { via: 'exchange', actor: e.actor, from: cand.api, api: e.to }) });
      }
    }
  }
  return found;
}

/** What a machine token for `api` leads to, by exchanges only (the API's own scopes excluded unless a chain comes back): memoised per model. */
function downstream(m: Model, api: string): Map<string, Found> {
  let d = m.downstream.get(api);
  if (!d) {
    const node = m.apis.get(api);
    const first = (m.edges.get(api) ?? []).map((e) => ({ api: e.to, scopes: e.scopes, path: extend(undefined, { via: 'exchange', actor: e.actor, from: api, api: e.to }) }));
    d = node ? explore(m, [[], first], machineGate) : new Map<string, Found>();
    m.downstream.set(api, d);
  }
  return d;
}

function toReach(m: Model, principal: string, f: Found): Reach {
  const k = key(f.api, f.scope);
  return { principal, api: f.api, scope: f.scope, sensitive: m.sensitive.has(k), chain: f.chain, path: hopsOf(f.tail, f.prefix) };
}

const machineGate: Gate = (_api, scopes) => scopes;

function roleGate(role: RoleNode | undefined): Gate {
  const granted = new Set(role?.scopes ?? []);
  return (api, scopes) => {
    if (!api.requireRoles) return scopes;
    if (!role || role.resource !== api.identifier) return [];
    return scopes.filter((s) => granted.has(s));
  };
}

/** A person holding every role (the most a sign-in through a leaked client could bring). */
function everyRoleGate(m: Model): Gate {
  const granted = new Map<string, Set<string>>();
  for (const r of m.roles) {
    let set = granted.get(r.resource);
    if (!set) granted.set(r.resource, (set = new Set()));
    for (const s of r.scopes) set.add(s);
  }
  return (api, scopes) => (api.requireRoles ? scopes.filter((s) => granted.get(api.identifier)?.has(s)) : scopes);
}

interface Start {
  api: string;
  scopes: readonly string[];
  /** exchanges already made */
  depth: number;
  hops: Hop[];
}

/** What a machine holding the client's credentials starts with. */
function clientStarts(m: Model, id: string): Start[] {
  const c = m.clients.get(id);
  if (!c) return [];
  const allowance = m.allowance.get(id)!;
  const out: Start[] = [];
  if (c.grants.includes('client_credentials')) {
    for (const [api, scopes] of allowance) out.push({ api, scopes, depth: 0, hops: [{ via: 'client_credentials', client: id, api }] });
  }
  // tokens that callers send to the APIs it serves, exchanged for its own allowance
  if (c.grants.includes(TOKEN_EXCHANGE)) {
    const served = [...m.apis.values()].filter((a) => a.servedBy.includes(id)).map((a) => a.identifier).sort(byText);
    for (const from of served) {
      for (const [api, scopes] of allowance) {
        if (api === from) continue;
        out.push({ api, scopes, depth: 1, hops: [{ via: 'served_token', client: id, api: from }, { via: 'exchange', actor: id, from, api }] });
      }
    }
  }
  return out;
}

/** A machine's reach from its starts: each start's scopes, then what its API leads to (downstream, shared by every client). */
function machineReach(m: Model, starts: Start[]): Map<string, Found> {
  const found = new Map<string, Found>();
  const better = (k: string, f: Found) => {
    const had = found.get(k);
    if (!had || had.chain > f.chain) found.set(k, f);
  };
  for (const st of [...starts].sort((a, b) => a.depth - b.depth)) {
    for (const scope of st.scopes) better(key(st.api, scope), { api: st.api, scope, chain: st.depth, prefix: st.hops, tail: undefined });
  }
  for (const st of starts) {
    for (const [k, f] of downstream(m, st.api)) {
      const chain = st.depth + f.chain;
      const had = found.get(k);
      if (!had || had.chain > chain) found.set(k, { api: f.api, scope: f.scope, chain, prefix: st.hops, tail: f.tail });
    }
  }
  return found;
}

/** What a person starts with, signing in through any client (or only `through`). */
function personStarts(m: Model, through?: string): Candidate[][] {
  const direct: Candidate[] = [];
  const exchanged: Candidate[] = [];
  const ids = through !== undefined ? [through] : m.clientIds;
  for (const id of ids) {
    const c = m.clients.get(id);
    if (!c || !c.grants.includes('authorization_code')) continue;
    const allowance = m.allowance.get(id)!;
    for (const [api, scopes] of allowance) {
      const signIn = extend(undefined, { via: 'sign_in', client: id, api });
      direct.push({ api, scopes, path: signIn });
      // the sign-in client may exchange the person's token, issued to itself
      if (c.grants.includes(TOKEN_EXCHANGE)) {
        for (const [to, toScopes] of allowance) {
          if (to !== api) exchanged.push({ api: to, scopes: toScopes, path: extend(signIn, { via: 'exchange', actor: id, from: api, api: to }) });
        }
      }
    }
  }
  return [direct, exchanged];
}

const sortReach = (a: Reach, b: Reach) =>
  byText(a.principal, b.principal) || byText(a.api, b.api) || byText(a.scope, b.scope) || a.chain - b.chain;

/** Everything a machine holding the client's credentials reaches (empty for an unknown or disabled client). */
export function reachOfClient(m: Model, id: string): Reach[] {
  const principal = `client:${id}`;
  return [...machineReach(m, clientStarts(m, id)).values()].map((f) => toReach(m, principal, f)).sort(sortReach);
}

function peopleReach(m: Model): PeopleReach {
  if (!m.people) {
    const expandedAt = new Map<string, { depth: number; path: PathNode | undefined }>();
    const found = explore(m, personStarts(m), roleGate(undefined), expandedAt);
    m.people = { found, expandedAt };
  }
  return m.people;
}

/**
 * What a role adds to what any person reaches: tokens for the role's own API
 * (which requires roles; a role on another API adds nothing), got by signing
 * in or by an exchange from an API people reach, and what they lead to.
 */
function roleExtra(m: Model, role: RoleNode): Map<string, Found> {
  const target = m.apis.get(role.resource);
  const people = peopleReach(m);
  if (!target?.requireRoles) return new Map();
  const layers: Candidate[][] = [[], []];
  for (const id of m.clientIds) {
    const c = m.clients.get(id)!;
    const allowance = m.allowance.get(id)!;
    const scopes = allowance.get(target.identifier);
    if (!scopes || !c.grants.includes('authorization_code')) continue;
    layers[0]!.push({ api: target.identifier, scopes, path: extend(undefined, { via: 'sign_in', client: id, api: target.identifier }) });
  }
  for (const id of m.clientIds) {
    const c = m.clients.get(id)!;
    const allowance = m.allowance.get(id)!;
    const scopes = allowance.get(target.identifier);
    if (!scopes || !c.grants.includes('authorization_code') || !c.grants.includes(TOKEN_EXCHANGE)) continue;
    for (const from of allowance.keys()) {
      if (from === target.identifier || m.apis.get(from)?.requireRoles) continue;
      const signIn = extend(undefined, { via: 'sign_in', client: id, api: from });
      layers[1]!.push({ api: target.identifier, scopes, path: extend(signIn, { via: 'exchange', actor: id, from, api: target.identifier }) });
    }
  }
  for (const e of m.edgesInto.get(target.identifier) ?? []) {
    const at = people.expandedAt.get(e.from);
    if (!at) continue;
    (layers[at.depth + 1] ??= []).push({ api: target.identifier, scopes: e.scopes, path: extend(at.path, { via: 'exchange', actor: e.actor, from: e.from, api: target.identifier }) });
  }
  for (let i = 0; i < layers.length; i++) layers[i] ??= [];
  const extra = new Map<string, Found>();
  // an API people reach as early leads nowhere new, unless through the target (already expanded here)
  const known = (api: string, depth: number) => (people.expandedAt.get(api)?.depth ?? Infinity) <= depth;
  for (const [k, f] of explore(m, layers, roleGate(role), new Map(), known)) if (!people.found.has(k)) extra.set(k, f);
  return extra;
}

/**
 * What a person reaches: `undefined` → any person who signs in (principal
 * `people`); a role name → what holding that role adds (principal `role:<name>`).
 */
export function reachOfPerson(m: Model, role?: string): Reach[] {
  if (role === undefined) return [...peopleReach(m).found.values()].map((f) => toReach(m, 'people', f)).sort(sortReach);
  const r = m.roles.find((x) => x.name === role);
  if (!r) return [];
  return [...roleExtra(m, r).values()].map((f) => toReach(m, `role:${role}`, f)).sort(sortReach);
}

/** The whole map: every enabled client, every role and `people`, sorted. */
export function accessMap(m: Model): Reach[] {
  const out: Reach[] = [];
  for (const id of m.clientIds) out.push(...reachOfClient(m, id));
  const roleNames = [...new Set(m.roles.map((r) => r.name))].sort(byText);
  for (const name of roleNames) out.push(...reachOfPerson(m, name));
  out.push(...reachOfPerson(m));
  return out;
}

/** Who reaches an API (and, with `scope`, that scope of it), by which path. */
export function whoReaches(m: Model, api: string, scope?: string, map: Reach[] = accessMap(m)): Reach[] {
  return map.filter((r) => r.api === api && (scope === undefined || r.scope === scope));
}

/** A scope reached through a leaked client, with how many principals reach it at all (fewer: rarer, more sensitive). */
export interface LeakedReach extends Reach {
  /** how many principals of the whole map reach this scope */
  reachedBy: number;
}

/**
 * What an attacker holding the client's credentials reaches: its machine
 * reach, plus what people signing in through it could be made to hand over
 * (as if they held every role), ranked most sensitive first: sensitive
 * scopes, then scopes few principals reach, then by API and scope.
 */
export function ifLeaked(m: Model, id: string, map: Reach[] = accessMap(m)): LeakedReach[] {
  if (!m.clients.has(id)) return [];
  const principal = `client:${id}`;
  const found = machineReach(m, clientStarts(m, id));
  for (const [k, r] of explore(m, personStarts(m, id), everyRoleGate(m))) {
    const had = found.get(k);
    if (!had || had.chain > r.chain) found.set(k, r);
  }
  const counts = new Map<string, Set<string>>();
  for (const r of map) {
    const k = key(r.api, r.scope);
    let set = counts.get(k);
    if (!set) counts.set(k, (set = new Set()));
    set.add(r.principal);
  }
  return [...found.values()]
    .map((f) => toReach(m, principal, f))
    .map((r) => ({ ...r, reachedBy: Math.max(1, counts.get(key(r.api, r.scope))?.size ?? 1) }))
    .sort(
      (a, b) =>
        Number(b.sensitive) - Number(a.sensitive) || a.reachedBy - b.reachedBy || byText(a.api, b.api) || byText(a.scope, b.scope),
    );
}

// ------------------------------------------------------------ chains

export interface Chain {
  /** number of exchanges */
  length: number;
  path: Hop[];
}

/** APIs someone can get a first token for (client_credentials or a sign-in). */
function mintable(m: Model): { api: string; hop: Hop }[] {
  const out: { api: string; hop: Hop }[] = [];
  for (const id of m.clientIds) {
    const c = m.clients.get(id)!;
    const via = c.grants.includes('client_credentials') ? 'client_credentials' : c.grants.includes('authorization_code') ? 'sign_in' : undefined;
    if (!via) continue;
    for (const api of m.allowance.get(id)!.keys()) out.push({ api, hop: { via, client: id, api } });
  }
  return out;
}

/**
 * The longest exchange chain without repeating an API (a cycle in servedBy
 * ends a chain), over every API someone can get a first token for. With
 * `moreThan`, stops at the first chain longer than that (the max-chain
 * policy). `budget` bounds the search (edges walked); when it runs out the
 * answer is the longest found so far and `exhausted` is true.
 */
export function longestChain(m: Model, opts: { moreThan?: number; budget?: number } = {}): Chain & { exhausted: boolean } {
  let best: Chain = { length: 0, path: [] };
  let budget = opts.budget ?? 1_000_000;
  const limit = opts.moreThan;
  const onPath = new Set<string>();
  const path: Hop[] = [];
  let done = false;
  const walk = (api: string) => {
    if (done) return;
    const length = path.length - 1;
    if (length > best.length) {
      best = { length, path: [...path] };
      if (limit !== undefined && length > limit) {
        done = true;
        return;
      }
    }
    for (const e of m.edges.get(api) ?? []) {
      if (onPath.has(e.to)) continue;
      if (--budget < 0) {
        done = true;
        return;
      }
      onPath.add(e.to);
      path.push({ via: 'exchange', actor: e.actor, from: api, api: e.to });
      walk(e.to);
      path.pop();
      onPath.delete(e.to);
      if (done) return;
    }
  };
  const seen = new Set<string>();
  for (const { api, hop } of mintable(m)) {
    if (seen.has(api)) continue;
    seen.add(api);
    onPath.add(api);
    path.push(hop);
    walk(api);
    path.pop();
    onPath.delete(api);
    if (done) break;
  }
  // a sign-in client exchanging the person's token issued to itself: one more hop at the start
  for (const id of m.clientIds) {
    if (done) break;
    const c = m.clients.get(id)!;
    if (!c.grants.includes('authorization_code') || !c.grants.includes(TOKEN_EXCHANGE)) continue;
    const apis = [...m.allowance.get(id)!.keys()];
    if (apis.length < 2) continue;
    const first = apis[0]!;
    for (const to of apis.slice(1)) {
      onPath.add(first).add(to);
      path.push({ via: 'sign_in', client: id, api: first }, { via: 'exchange', actor: id, from: first, api: to });
      walk(to);
      path.length = 0;
      onPath.clear();
      if (done) break;
    }
  }
  return { ...best, exhausted: budget < 0 };
}

// ------------------------------------------------------------ rendering helpers

/** One line per path: `storefront -[client_credentials]-> https://orders -[exchange by orders-svc]-> https://payments`. */
export function pathText(path: readonly Hop[]): string {
  const parts: string[] = [];
  for (const hop of path) {
    switch (hop.via) {
      case 'client_credentials':
        parts.push(`${hop.client} -[client_credentials]-> ${hop.api}`);
        break;
      case 'sign_in':
        parts.push(`sign-in via ${hop.client} -> ${hop.api}`);
        break;
      case 'served_token':
        parts.push(`(a caller's token for ${hop.api}, served by ${hop.client})`);
        break;
      case 'exchange':
        parts.push(` -[exchange by ${hop.actor}]-> ${hop.api}`);
        break;
    }
  }
  return parts.join('');
}
