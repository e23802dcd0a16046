// Property: on small random registries, what the model says a client reaches
// is what the running app gives — the token endpoint (client_credentials) and
// the token-exchange grant — when the model's paths are tried, and every
// exchange the model leaves out is refused. Machines only (people's sign-ins
// are covered by the hand-built cases in model.test.ts).
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildModel, reachOfClient, TOKEN_EXCHANGE, type Hop, type Registry } from '../../src/access/model.ts';
import { createClient } from '../../src/clients/store.ts';
import { createResource, updateResource } from '../../src/resources/store.ts';
import { createTestApp, type TestApp } from '../helpers/app.ts';
import { basic } from '../admin/helpers.ts';

const SUBJECT = 'urn:ietf:params:oauth:token-type:access_token';

interface GenClient {
  grants: string[];
  resources: number[];
  scopes: string[];
  disabled: boolean;
}
interface GenApi {
  scopes: string[];
  servedBy: number[];
}

const API_COUNT = 3;
const scopePool = (a: number) => [`a${a}:x`, `a${a}:y`, `a${a}:z`];
const ALL_SCOPES = Array.from({ length: API_COUNT }, (_, a) => scopePool(a)).flat();

const arbRegistry = fc.integer({ min: 2, max: 4 }).chain((n) =>
  fc.record({
    apis: fc.tuple(
      ...Array.from({ length: API_COUNT }, (_, a) =>
        fc.record({
          scopes: fc.subarray(scopePool(a), { minLength: 1 }),
          servedBy: fc.subarray(Array.from({ length: n }, (_, i) => i)),
        }),
      ),
    ),
    clients: fc.array(
      fc.record({
        grants: fc.constantFrom(['client_credentials'], ['client_credentials', TOKEN_EXCHANGE], [TOKEN_EXCHANGE]),
        resources: fc.subarray(Array.from({ length: API_COUNT }, (_, a) => a)),
        scopes: fc.subarray(ALL_SCOPES),
        disabled: fc.integer({ min: 0, max: 9 }).map((x) => x < 2),
      }),
      { minLength: n, maxLength: n },
    ),
  }),
);

let t: TestApp;
let run = 0;

beforeAll(async () => {
  t = await createTestApp();
}, 60_000);
afterAll(async () => {
  await t?.close();
});

/** The scopes a token response grants (empty when refused). */
const granted = (res: { status: number; body: { scope?: string } }) => (res.status === 200 ? new Set((res.body.scope ?? '').split(' ').filter(Boolean)) : new Set<string>());

describe('access model against the running app (fast-check)', () => {
  it('a client reaches exactly what its model paths give, and the exchanges the model leaves out are refused', async () => {
    await fc.assert(
      fc.asyncProperty(arbRegistry, async ({ apis, clients }: { apis: GenApi[]; clients: GenClient[] }) => {
        const r = run++;
        const db = t.gatehouse.db.prisma;
        const apiId = (a: number) => `https://r${r}-a${a}.test`;
        const clientId = (i: number) => `r${r}-c${i}`;
        const secrets = new Map<string, string>();
        for (const [a, api] of apis.entries()) await createResource(db, { identifier: apiId(a), scopes: api.scopes });
        for (const [i, c] of clients.entries()) {
          const created = await createClient(db, {
            id: clientId(i),
            name: clientId(i),
            grants: c.grants as never,
            resources: c.resources.map(apiId),
            scopes: c.scopes,
            disabled: c.disabled,
          });
          secrets.set(clientId(i), created.clientSecret!);
        }
        for (const [a, api] of apis.entries()) if (api.servedBy.length > 0) await updateResource(db, apiId(a), { servedBy: api.servedBy.map(clientId) });

        const registry: Registry = {
          apis: apis.map((api, a) => ({ identifier: apiId(a), scopes: api.scopes, servedBy: api.servedBy.map(clientId) })),
          clients: clients.map((c, i) => ({ id: clientId(i), grants: c.grants, scopes: c.scopes, resources: c.resources.map(apiId), disabled: c.disabled })),
          roles: [],
        };
        const m = buildModel(registry);

        const token = (client: string, form: Record<string, string>) =>
          t.request.post('/token').type('form').set('Authorization', basic(client, secrets.get(client)!)).send(form);
        const cc = (client: string, api: string) => token(client, { grant_type: 'client_credentials', resource: api });
        const exchange = (actor: string, subject: string, api: string) =>
          token(actor, { grant_type: TOKEN_EXCHANGE, subject_token: subject, subject_token_type: SUBJECT, resource: api });

        // 1. client_credentials: the model's direct reach, API by API, for every client and API
        const ccTokens = new Map<string, { client: string; token: string }>();
        for (const c of registry.clients) {
          const reach = reachOfClient(m, c.id);
          for (const api of registry.apis) {
            const res = await cc(c.id, api.identifier);
            const want = reach.filter((x) => x.chain === 0 && x.api === api.identifier).map((x) => x.scope);
            expect([...granted(res)].sort(), `${c.id} client_credentials ${api.identifier}: ${JSON.stringify(res.body)}`).toEqual(want.sort());
            if (res.status === 200 && !ccTokens.has(api.identifier)) ccTokens.set(api.identifier, { client: c.id, token: res.body.access_token as string });
          }
        }

        // 2. every path of the model, replayed hop by hop: the union per (client, API) equals the model's
        for (const c of registry.clients) {
          const reach = reachOfClient(m, c.id);
          const got = new Map<string, Set<string>>();
          const want = new Map<string, Set<string>>();
          const add = (map: Map<string, Set<string>>, api: string, scopes: Iterable<string>) => {
            const set = map.get(api) ?? new Set<string>();
            for (const s of scopes) set.add(s);
            map.set(api, set);
          };
          for (const x of reach) {
            const replayed = await replay(x.path);
            if (replayed === undefined) continue; // a served API no client_credentials caller can get a token for
            add(want, x.api, [x.scope]);
            add(got, x.api, replayed);
            expect(replayed.has(x.scope), `${c.id} → ${x.scope} by ${JSON.stringify(x.path)}`).toBe(true);
          }
          for (const [api, scopes] of want) expect([...got.get(api)!].sort(), `${c.id} on ${api}`).toEqual([...scopes].sort());
        }

        async function replay(path: readonly Hop[]): Promise<Set<string> | undefined> {
          let current: string | undefined;
          let scopes = new Set<string>();
          for (const hop of path) {
            if (hop.via === 'client_credentials') {
              const res = await cc(hop.client, hop.api);
              expect(res.status, JSON.stringify(res.body)).toBe(200);
              current = res.body.access_token as string;
              scopes = granted(res);
            } else if (hop.via === 'served_token') {
              const held = ccTokens.get(hop.api);
              if (!held) return undefined;
              current = held.token;
            } else if (hop.via === 'exchange') {
              const res = await exchange(hop.actor, current!, hop.api);
              expect(res.status, `${hop.actor} exchange ${hop.from} → ${hop.api}: ${JSON.stringify(res.body)}`).toBe(200);
              current = res.body.access_token as string;
              scopes = granted(res);
            } else return undefined;
          }
          return scopes;
        }

        // 3. every exchange: allowed exactly when the model has the edge (or the subject token is the actor's own)
        for (const actor of registry.clients) {
          for (const [from, held] of ccTokens) {
            for (const to of registry.apis) {
              if (to.identifier === from) continue;
              const edge = m.edges.get(from)?.find((e) => e.actor === actor.id && e.to === to.identifier);
              const own = held.client === actor.id && m.clients.get(actor.id)?.grants.includes(TOKEN_EXCHANGE) ? m.allowance.get(actor.id)?.get(to.identifier) : undefined;
              const want = [...new Set([...(edge?.scopes ?? []), ...(own ?? [])])].sort();
              const res = await exchange(actor.id, held.token, to.identifier);
              expect([...granted(res)].sort(), `${actor.id} exchanges ${held.client}'s token for ${from} → ${to.identifier}: ${JSON.stringify(res.body)}`).toEqual(want);
              if (want.length === 0) expect([400, 401]).toContain(res.status); // 401: a disabled actor (invalid_client)
            }
          }
        }
      }),
      { numRuns: 15, seed: 15, endOnFailure: true },
    );
  }, 300_000);
});
