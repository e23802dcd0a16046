// A generated registry for the access-map benchmark (bench/access-map.ts): deterministic.
import { TOKEN_EXCHANGE, type Registry } from '../src/access/model.ts';

/** Deterministic PRNG (mulberry32), so every run measures the same registry. */
function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export function generateRegistry(clients = 1000, apis = 300, seed = 15): Registry {
  const r = rng(seed);
  const pick = <T>(xs: readonly T[]) => xs[Math.floor(r() * xs.length)]!;
  const apiIds = Array.from({ length: apis }, (_, i) => `https://api${i}.example`);
  const clientIds = Array.from({ length: clients }, (_, i) => `client-${i}`);
  const apiNodes = apiIds.map((identifier, i) => {
    const scopes = Array.from({ length: 2 + Math.floor(r() * 4) }, (_, j) => `api${i}:s${j}`);
    return {
      identifier,
      scopes,
      // most APIs have one or two services behind them
      servedBy: Array.from({ length: Math.floor(r() * 3) }, () => pick(clientIds)),
      requireRoles: r() < 0.2,
      sensitiveScopes: r() < 0.3 ? [scopes[0]!] : [],
    };
  });
  const clientNodes = clientIds.map((id) => {
    const resources = [...new Set(Array.from({ length: 1 + Math.floor(r() * 4) }, () => pick(apiIds)))];
    const scopes = resources.flatMap((a) => apiNodes.find((n) => n.identifier === a)!.scopes.filter(() => r() < 0.7));
    const kind = r();
    const grants = kind < 0.5 ? ['client_credentials'] : kind < 0.8 ? ['client_credentials', TOKEN_EXCHANGE] : kind < 0.9 ? ['authorization_code', 'refresh_token'] : ['authorization_code', TOKEN_EXCHANGE];
    return { id, grants, scopes, resources, disabled: r() < 0.03 };
  });
  const roles = apiNodes
    .filter((a) => a.requireRoles)
    .flatMap((a, i) => [{ name: `role-${i}`, resource: a.identifier, scopes: a.scopes.slice(0, 2) }]);
  return { clients: clientNodes, apis: apiNodes, roles };
}

