// The served OpenAPI document: valid OpenAPI 3.1 (a maintained validator),
// and the same set of operations as the router, both ways.
import { Validator } from '@seriousme/openapi-schema-validator';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ADMIN_BASE, ADMIN_ROUTES, createAdminApi, routerPath } from '../../src/admin/index.ts';
import { createTestApp, type TestApp } from '../helpers/app.ts';
import { BASE } from './helpers.ts';

interface Doc {
  openapi: string;
  servers: { url: string }[];
  paths: Record<string, Record<string, { operationId: string; security: Record<string, string[]>[]; responses: Record<string, unknown> }>>;
  components: { securitySchemes: Record<string, { type: string; flows?: { clientCredentials?: { tokenUrl: string; scopes: Record<string, string> } } }> };
}

describe('admin API: OpenAPI document', () => {
  let t: TestApp;
  let doc: Doc;

  beforeAll(async () => {
    t = await createTestApp({ env: { ISSUER: 'https://id.example.com' } });
    const res = await t.request.get(`${BASE}/openapi.json`).expect(200);
    expect(res.headers['content-type']).toMatch(/^application\/json/);
    doc = res.body as Doc;
  });
  afterAll(async () => {
    await t?.close();
  });

  it('is served without a token and validates as OpenAPI 3.1', async () => {
    expect(doc.openapi).toMatch(/^3\.1\.\d+$/);
    const validator = new Validator();
    const result = await validator.validate(structuredClone(doc) as unknown as Record<string, unknown>);
    expect(result.errors ?? []).toEqual([]);
    expect(result.valid).toBe(true);
    expect(validator.version).toBe('3.1');
    // every $ref resolves
    expect(() => validator.resolveRefs()).not.toThrow();
  });

  it('names the issuer: server URL, and the OAuth2 client-credentials token URL with every admin scope', () => {
    expect(doc.servers[0]!.url).toBe('https://id.example.com/admin/v1');
    const oauth = doc.components.securitySchemes.oauth2!;
    expect(oauth.type).toBe('oauth2');
    expect(oauth.flows!.clientCredentials!.tokenUrl).toBe('https://id.example.com/token');
    expect(Object.keys(oauth.flows!.clientCredentials!.scopes)).toEqual(
      expect.arrayContaining(['gatehouse:admin', 'gatehouse:clients:read', 'gatehouse:clients:write', 'gatehouse:audit:read']),
    );
    expect(doc.components.securitySchemes.bearerJwt).toMatchObject({ type: 'http', scheme: 'bearer', bearerFormat: 'JWT' });
  });

  it('every operation states its scope, and 401/403; only the document itself is public', () => {
    for (const [path, item] of Object.entries(doc.paths)) {
      for (const [method, op] of Object.entries(item)) {
        if (path === '/openapi.json') {
          expect(op.security).toEqual([]);
          continue;
        }
        const route = ADMIN_ROUTES.find((r) => r.path === path && r.method === method)!;
        expect(route, `${method} ${path}`).toBeDefined();
        expect(op.security).toContainEqual({ oauth2: [route.scope] });
        expect(op.security).toContainEqual({ oauth2: ['gatehouse:admin'] });
        expect(Object.keys(op.responses)).toEqual(expect.arrayContaining(['401', '403']));
      }
    }
  });

  it('lists exactly the operations the router serves, and the router serves exactly those', () => {
    const gh = t.gatehouse;
    const api = createAdminApi({
      db: gh.db.prisma,
      config: gh.config,
      logger: gh.logger,
      backchannel: async () => [],
      dpopReplay: { add: () => true },
      mailer: gh.mailer,
      keyring: () => {
        throw new Error('not used');
      },
      clients: gh.clients,
      resources: gh.resources,
      revocations: gh.revocations,
      provider: gh.provider,
      reloadKeys: gh.reloadKeys,
    });
    const served = new Set<string>();
    for (const layer of api.router.stack) {
      for (const m of layer.methods) if (m !== 'HEAD') served.add(`${m} ${String(layer.path)}`);
    }
    const documented = new Set<string>();
    for (const [path, item] of Object.entries(doc.paths)) {
      for (const method of Object.keys(item)) documented.add(`${method.toUpperCase()} ${ADMIN_BASE}${routerPath(path)}`);
    }
    expect([...served].sort()).toEqual([...documented].sort());
    expect(served.size).toBe(ADMIN_ROUTES.length + 1);
    // operation ids are unique
    const ids = Object.values(doc.paths).flatMap((item) => Object.values(item).map((op) => op.operationId));
    expect(new Set(ids).size).toBe(ids.length);
    // the served document is the one built from this table
    expect(JSON.parse(JSON.stringify(api.document))).toEqual(doc);
  });

  it('covers the resources of the contract', () => {
    const paths = Object.keys(doc.paths);
    for (const p of [
      '/clients',
      '/clients/{id}',
      '/clients/{id}/secret',
      '/users',
      '/users/{id}',
      '/users/{id}/password',
      '/users/{id}/sessions:revoke',
      '/users/{id}/roles/{role}',
      '/resources',
      '/resources/{identifier}',
      '/roles',
      '/roles/{name}',
      '/keys',
      '/keys/rotate',
      '/audit-events',
      '/audit-events/{id}',
    ]) {
      expect(paths).toContain(p);
    }
    expect(Object.keys(doc.paths['/clients/{id}']!).sort()).toEqual(['delete', 'get', 'patch']);
  });
});
