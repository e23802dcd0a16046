// Discovery stays truthful: everything /.well-known/openid-configuration (and
// the RFC 8414 oauth-authorization-server document) advertises is served, and
// everything served is advertised.
//
// - every advertised endpoint answers, with the method its spec uses,
//   something other than 404 (and never a 5xx);
// - the advertised grant types are exactly the ones the client registry
//   accepts (src/clients/store.ts GRANT_TYPES), and the token endpoint
//   handles each of them (no unsupported_grant_type for any);
// - the device authorization and PAR endpoints are there;
// - what is not served is not advertised (no registration endpoint, no CIBA,
//   no implicit or hybrid response types).
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createClient, GRANT_TYPES } from '../../src/clients/store.ts';
import { createResource } from '../../src/resources/store.ts';
import { createTestApp, type TestApp } from '../helpers/app.ts';
import { basic } from '../sso/flow.ts';

/** Each endpoint key of the discovery document, with the method its spec calls it with. */
const ENDPOINTS: Record<string, 'GET' | 'POST'> = {
  authorization_endpoint: 'GET',
  token_endpoint: 'POST',
  userinfo_endpoint: 'GET',
  jwks_uri: 'GET',
  introspection_endpoint: 'POST',
  revocation_endpoint: 'POST',
  end_session_endpoint: 'GET',
  device_authorization_endpoint: 'POST',
  pushed_authorization_request_endpoint: 'POST',
};

describe('discovery is truthful', () => {
  let t: TestApp;
  let discovery: Record<string, unknown>;
  let secret: string;

  beforeAll(async () => {
    t = await createTestApp();
    discovery = (await t.request.get('/.well-known/openid-configuration').expect(200)).body as Record<string, unknown>;
    await createResource(t.gatehouse.db.prisma, { identifier: 'https://api.example.com', scopes: ['read'] });
    const c = await createClient(t.gatehouse.db.prisma, {
      id: 'everything',
      name: 'every grant',
      grants: [...GRANT_TYPES],
      redirectUris: ['https://app.example.com/cb'],
      resources: ['https://api.example.com'],
      scopes: ['read'],
    });
    secret = c.clientSecret!;
  });
  afterAll(async () => {
    await t?.close();
  });

  it('lists the device authorization and PAR endpoints', () => {
    expect(discovery.device_authorization_endpoint).toBe(`${t.config.issuer}/device/auth`);
    expect(discovery.pushed_authorization_request_endpoint).toBe(`${t.config.issuer}/request`);
  });

  it('every advertised endpoint answers (not 404, not 5xx), and every endpoint key is one we know', async () => {
    const advertised = Object.keys(discovery).filter((k) => k.endsWith('_endpoint') || k === 'jwks_uri');
    expect(advertised.sort()).toEqual(Object.keys(ENDPOINTS).sort());
    for (const key of advertised) {
      const url = new URL(String(discovery[key]));
      expect(url.origin, key).toBe(new URL(t.config.issuer).origin);
      const res = ENDPOINTS[key] === 'GET' ? await t.request.get(url.pathname) : await t.request.post(url.pathname).type('form').send({});
      expect(res.status, `${ENDPOINTS[key]} ${url.pathname} (${key})`).not.toBe(404);
      expect(res.status, `${ENDPOINTS[key]} ${url.pathname} (${key})`).toBeLessThan(500);
    }
    // /device, the page the device flow sends people to, is served too
    expect((await t.request.get('/device')).status).toBe(200);
  });

  it('advertises exactly the grants the registry accepts, and the token endpoint handles each', async () => {
    expect([...(discovery.grant_types_supported as string[])].sort()).toEqual([...GRANT_TYPES].sort());
    for (const grant of GRANT_TYPES) {
      const res = await t.request.post('/token').type('form').set('Authorization', basic('everything', secret)).send({ grant_type: grant });
      expect(res.status, grant).toBeLessThan(500);
      expect(res.body.error, `${grant}: ${JSON.stringify(res.body)}`).not.toBe('unsupported_grant_type');
      if (grant === 'client_credentials') expect(res.status).toBe(200);
    }
    const unserved = await t.request.post('/token').type('form').set('Authorization', basic('everything', secret)).send({ grant_type: 'password' });
    expect(unserved.body.error).toBe('unsupported_grant_type');
  });

  it('advertises nothing that is not served', async () => {
    expect(discovery.registration_endpoint).toBeUndefined();
    expect(discovery.backchannel_authentication_endpoint).toBeUndefined();
    expect(discovery.response_types_supported).toEqual(['code']);
    expect(discovery.code_challenge_methods_supported).toEqual(['S256']);
    expect(discovery.request_object_signing_alg_values_supported).not.toContain('none');
    // the RFC 8414 document says the same
    const oauth = (await t.request.get('/.well-known/oauth-authorization-server').expect(200)).body as Record<string, unknown>;
    for (const key of [...Object.keys(ENDPOINTS), 'grant_types_supported', 'issuer']) expect(oauth[key], key).toEqual(discovery[key]);
  });
});
