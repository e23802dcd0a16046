// The access map as the CLI and the admin API show it: one query
// (whole map, --client, --api [--scope], --if-leaked), one JSON shape, and the
// text renderings (table, Mermaid, Graphviz dot). Everything is sorted, so an
// operator can commit the output and review its diffs.
import { NotFoundError, ValidationError } from '../kernel/errors.ts';
import { accessMap, byText, ifLeaked, longestChain, pathText, reachOfClient, whoReaches, type Hop, type Model, type Reach } from './model.ts';

export interface AccessMapQuery {
  client?: string;
  api?: string;
  scope?: string;
  ifLeaked?: string;
}

export interface ReachView {
  principal: string;
  api: string;
  scope: string;
  sensitive: boolean;
  chain: number;
  path: Hop[];
  pathText: string;
  /** --if-leaked only: how many principals of the whole map reach this scope */
  reachedBy?: number;
}

export interface AccessMapView {
  query: AccessMapQuery;
  /** --if-leaked: most sensitive first; otherwise by principal, API, scope */
  entries: ReachView[];
  /** the longest token-exchange chain in the whole registry */
  longestChain: { length: number; path: Hop[]; pathText: string };
  summary: { principals: number; apis: number; scopes: number; sensitive: number };
}

function toView(r: Reach & { reachedBy?: number }): ReachView {
  return {
    principal: r.principal,
    api: r.api,
    scope: r.scope,
    sensitive: r.sensitive,
    chain: r.chain,
    path: [...r.path],
    pathText: pathText(r.path),
    ...(r.reachedBy !== undefined && { reachedBy: r.reachedBy }),
  };
}

/** Answers a query; NotFoundError for an unknown client or API, ValidationError for a combination that means nothing. */
export function accessMapView(m: Model, q: AccessMapQuery): AccessMapView {
  const given = [q.client, q.api, q.ifLeaked].filter((x) => x !== undefined).length;
  if (given > 1) throw new ValidationError('query', 'give at most one of client, api and ifLeaked');
  if (q.scope !== undefined && q.api === undefined) throw new ValidationError('scope', 'needs api (the API whose scope it is)');
  const knownClient = (id: string) => {
    if (!m.registry.clients.some((c) => c.id === id)) throw new NotFoundError('client', id);
  };
  let entries: (Reach & { reachedBy?: number })[];
  if (q.client !== undefined) {
    knownClient(q.client);
    entries = reachOfClient(m, q.client);
  } else if (q.ifLeaked !== undefined) {
    knownClient(q.ifLeaked);
    entries = ifLeaked(m, q.ifLeaked);
  } else if (q.api !== undefined) {
    const api = m.apis.get(q.api);
    if (!api) throw new NotFoundError('resource', q.api);
    if (q.scope !== undefined && !api.scopes.includes(q.scope)) throw new ValidationError('scope', `'${q.scope}' is not a scope of ${q.api}`);
    entries = whoReaches(m, q.api, q.scope).sort((a, b) => byText(a.scope, b.scope) || byText(a.principal, b.principal));
  } else {
    entries = accessMap(m);
  }
  const chain = longestChain(m);
  const views = entries.map(toView);
  return {
    query: Object.fromEntries(Object.entries(q).filter(([, v]) => v !== undefined)) as AccessMapQuery,
    entries: views,
    longestChain: { length: chain.length, path: chain.path, pathText: pathText(chain.path) },
    summary: {
      principals: new Set(views.map((e) => e.principal)).size,
      apis: new Set(views.map((e) => e.api)).size,
      scopes: new Set(views.map((e) => `${e.api} ${e.scope}`)).size,
      sensitive: new Set(views.filter((e) => e.sensitive).map((e) => `${e.api} ${e.scope}`)).size,
    },
  };
}

// ------------------------------------------------------------ text

const principalLabel = (p: string) => (p === 'people' ? 'people (any signed-in person)' : p);

export function renderTable(v: AccessMapView): string {
  const leaked = v.query.ifLeaked !== undefined;
  const header = leaked ? ['RANK', 'SENSITIVE', 'REACHED-BY', 'API', 'SCOPE', 'CHAIN', 'PATH'] : ['PRINCIPAL', 'API', 'SCOPE', 'SENSITIVE', 'CHAIN', 'PATH'];
  const rows = v.entries.map((e, i) =>
    leaked
      ? [String(i + 1), e.sensitive ? 'yes' : '-', String(e.reachedBy ?? '-'), e.api, e.scope, String(e.chain), e.pathText]
      : [e.principal, e.api, e.scope, e.sensitive ? 'yes' : '-', String(e.chain), e.pathText],
  );
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  const line = (cells: string[]) => cells.map((c, i) => (i === cells.length - 1 ? c : c.padEnd(widths[i]! + 2))).join('').trimEnd();
  const title = leaked
    ? `if the credentials of ${v.query.ifLeaked} leak, an attacker reaches ${v.summary.scopes} scopes on ${v.summary.apis} APIs (${v.summary.sensitive} sensitive):`
    : `${v.summary.principals} principals reach ${v.summary.scopes} scopes on ${v.summary.apis} APIs (${v.summary.sensitive} sensitive); longest exchange chain: ${v.longestChain.length}`;
  return [title, ...(rows.length > 0 ? [line(header), ...rows.map(line)] : ['(nothing)'])].join('\n');
}

interface Graph {
  nodes: { key: string; label: string; kind: 'principal' | 'api'; layer: number }[];
  edges: { from: string; to: string; label: string }[];
}

const hopEdgeLabel = (h: Hop) =>
  h.via === 'client_credentials' ? 'client_credentials' : h.via === 'sign_in' ? `sign-in via ${h.client}` : h.via === 'served_token' ? 'serves' : `exchange by ${h.actor}`;

/** Nodes (principals, APIs with the scopes reached) and edges (how tokens flow), sorted and layered by chain depth. */
export function graphOf(v: AccessMapView): Graph {
  const principal = (p: string) => (v.query.ifLeaked !== undefined ? `client:${v.query.ifLeaked}` : p);
  const layer = new Map<string, number>();
  const labels = new Map<string, string>();
  const apiScopes = new Map<string, Set<string>>();
  const edges = new Map<string, { from: string; to: string; label: string }>();
  const setLayer = (k: string, l: number) => layer.set(k, Math.min(layer.get(k) ?? Infinity, l));
  for (const e of v.entries) {
    const p = principal(e.principal);
    setLayer(p, 0);
    labels.set(p, principalLabel(p));
    const scopes = apiScopes.get(e.api) ?? new Set<string>();
    scopes.add(e.sensitive ? `${e.scope} (sensitive)` : e.scope);
    apiScopes.set(e.api, scopes);
    let from = p;
    e.path.forEach((h, i) => {
      const to = `api:${h.via === 'exchange' ? h.api : h.api}`;
      if (h.via === 'exchange') from = `api:${h.from}`;
      setLayer(to, i + 1);
      const label = hopEdgeLabel(h);
      edges.set(`${from}\u0000${to}\u0000${label}`, { from, to, label });
      from = to;
    });
  }
  for (const [api, scopes] of apiScopes) labels.set(`api:${api}`, `${api}\n${[...scopes].sort(byText).join('\n')}`);
  for (const k of layer.keys()) if (!labels.has(k)) labels.set(k, k.slice(4));
  const nodes = [...layer.entries()]
    .map(([key, l]) => ({ key, label: labels.get(key)!, kind: key.startsWith('api:') ? ('api' as const) : ('principal' as const), layer: l }))
    .sort((a, b) => a.layer - b.layer || byText(a.key, b.key));
  return { nodes, edges: [...edges.values()].sort((a, b) => byText(a.from, b.from) || byText(a.to, b.to) || byText(a.label, b.label)) };
}

export function renderMermaid(v: AccessMapView): string {
  const g = graphOf(v);
  const id = new Map(g.nodes.map((n, i) => [n.key, `n${i}`] as const));
  const esc = (s: string) => s.replace(/"/g, '#quot;').replace(/\n/g, '<br/>');
  const lines = ['flowchart LR'];
  for (const n of g.nodes) lines.push(n.kind === 'api' ? `  ${id.get(n.key)}["${esc(n.label)}"]` : `  ${id.get(n.key)}(["${esc(n.label)}"])`);
  for (const e of g.edges) lines.push(`  ${id.get(e.from)} -->|"${esc(e.label)}"| ${id.get(e.to)}`);
  return lines.join('\n');
}

export function renderDot(v: AccessMapView): string {
  const g = graphOf(v);
  const q = (s: string) => JSON.stringify(s).replace(/\\n/g, '\\n');
  const lines = ['digraph access_map {', '  rankdir=LR;', '  node [fontname="sans-serif"];'];
  for (const n of g.nodes) lines.push(`  ${q(n.key)} [label=${q(n.label)}, shape=${n.kind === 'api' ? 'box' : 'ellipse'}];`);
  for (const e of g.edges) lines.push(`  ${q(e.from)} -> ${q(e.to)} [label=${q(e.label)}];`);
  lines.push('}');
  return lines.join('\n');
}
