// People on the admin API: only through a role on it, as it is now; a DPoP
// proof is single-use on every instance; audit names the person and the
// client that acted (and an exchange's actor chain).
import { createHash } from 'node:crypto';
import { SignJWT, exportJWK, generateKeyPair, type CryptoKey, type JWK } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { api, expectProblem } from '../admin/helpers.ts';
import type { TestApp } from '../helpers/app.ts';
import { cli } from '../helpers/cli.ts';
import { Browser, codeFlowTokens, token, type TestClient } from '../sso/flow.ts';
import { createApi, createRoleFor, createServiceClient, createUser, createWebClient, twoApps } from './fixtures.ts';

const ISSUER = 'http://localhost:3000';
const ADMIN = 'urn:gatehouse:admin';
const EXCHANGE = 'urn:ietf:params:oauth:grant-type:token-exchange';
const ACCESS_TOKEN = 'urn:ietf:params:oauth:token-type:access_token';
const ADMIN_SCOPES = 'gatehouse:admin gatehouse:clients:read gatehouse:users:read gatehouse:users:write';

describe('people and proofs on the admin API', () => {
  let apps: Awaited<ReturnType<typeof twoApps>>;
  let console_: TestClient;
  let n = 0;
  const a = (): TestApp => apps.a;
  const b = (): TestApp => apps.b;

  beforeAll(async () => {
    apps = await twoApps({ ISSUER, LOGIN_IP_MAX_FAILURES: '1000' });
    // a sign-in client allowed the whole admin API: the person's roles decide
    console_ = await createWebClient(a(), { name: 'Console', firstParty: true, resources: [ADMIN], scopes: ['openid', ...ADMIN_SCOPES.split(' ')] });
  });
  afterAll(async () => {
    await apps?.close();
  });

  async function personToken(roles: string[][]): Promise<{ token: string; id: string; email: string }> {
    const email = `admin-person${++n}@example.com`;
    const person = await createUser(a(), email);
    for (const [i, scopes] of roles.entries()) await createRoleFor(a(), { name: `r${n}-${i}`, resource: ADMIN, scopes }, [person.id]);
    const tokens = await codeFlowTokens(new Browser(a()), console_, { scope: `openid ${ADMIN_SCOPES}`, resource: ADMIN }, { email });
    return { token: tokens.access_token as string, id: person.id, email };
  }

  it('a person with no role on the admin API gets nothing, whatever their sign-in client is allowed', async () => {
    const p = await personToken([]);
    for (const path of ['/clients', '/users', '/keys', '/audit-events']) expectProblem(await api(b(), p.token, 'get', path), 403);
  });

  it('a person with a narrow role holds only that scope; gatehouse-admin holds all', async () => {
    const reader = await personToken([['gatehouse:clients:read']]);
    await api(b(), reader.token, 'get', '/clients').expect(200);
    expectProblem(await api(b(), reader.token, 'get', '/users'), 403);
    expectProblem(await api(b(), reader.token, 'post', '/clients').send({ name: 'x', grants: ['client_credentials'] }), 403);

    const email = `full${++n}@example.com`;
    await createUser(a(), email);
    const added = await cli(apps.database.url, ['users', 'add-role', email, 'gatehouse-admin']);
    expect(added.code, added.stderr).toBe(0);
    const full = await codeFlowTokens(new Browser(a()), console_, { scope: `openid ${ADMIN_SCOPES}`, resource: ADMIN }, { email });
    await api(b(), full.access_token as string, 'get', '/users').expect(200);
    await api(b(), full.access_token as string, 'get', '/keys').expect(200);
  });

  it('taking the role away applies to the token already issued, at once', async () => {
    const p = await personToken([['gatehouse:users:read']]);
    await api(b(), p.token, 'get', '/users').expect(200);
    const removed = await cli(apps.database.url, ['users', 'remove-role', p.email, `r${n}-0`]);
    expect(removed.code, removed.stderr).toBe(0);
    expectProblem(await api(b(), p.token, 'get', '/users'), 403);
  });

  it('audit of a change made with an exchanged token names the person, the acting client and the actor chain', async () => {
    const p = await personToken([['gatehouse:users:read', 'gatehouse:users:write']]);
    // an operations gateway serves the portal API and may act on the admin API on a person's behalf
    const PORTAL = `https://portal${n}.example.com`;
    const gw = await createServiceClient(a(), { name: `ops-gw-${n}`, grants: [EXCHANGE], resources: [ADMIN], scopes: ['gatehouse:users:read', 'gatehouse:users:write'] });
    await createApi(a(), { identifier: PORTAL, scopes: ['portal:use'], servedBy: [gw.id] });
    const portal = await createWebClient(a(), { name: `portal-${n}`, firstParty: true, resources: [PORTAL], scopes: ['openid', 'portal:use'] });
    const subject = await codeFlowTokens(new Browser(a()), portal, { scope: 'openid portal:use', resource: PORTAL }, { email: p.email });
    const ex = await token(a(), gw, { grant_type: EXCHANGE, subject_token: subject.access_token as string, subject_token_type: ACCESS_TOKEN, resource: ADMIN });
    expect(ex.status, JSON.stringify(ex.body)).toBe(200);
    const target = await createUser(a(), `target${n}@example.com`);
    await api(b(), ex.body.access_token as string, 'patch', `/users/${target.id}`).send({ name: 'Renamed' }).expect(200);
    const event = await b().gatehouse.db.prisma.auditEvent.findFirstOrThrow({ where: { action: 'user.update', targetId: target.id } });
    expect(event).toMatchObject({ actorType: 'user', actorId: p.id });
    expect(event.details).toMatchObject({ viaClient: gw.id, act: { sub: gw.id } });
  });

  it('a DPoP proof used at one instance is refused at the other', async () => {
    const { privateKey, publicKey } = await generateKeyPair('ES256');
    const jwk: JWK = await exportJWK(publicKey);
    const svc = await createServiceClient(a(), { name: `dpop-admin-${++n}`, resources: [ADMIN], scopes: ['gatehouse:clients:read'] });
    const proof = (url: string, method: string, extra: Record<string, unknown> = {}, key: CryptoKey = privateKey) =>
      new SignJWT({ htm: method, htu: url, jti: crypto.randomUUID(), ...extra })
        .setProtectedHeader({ alg: 'ES256', typ: 'dpop+jwt', jwk })
        .setIssuedAt()
        .sign(key);
    const res = await a()
      .request.post('/token')
      .type('form')
      .auth(svc.id, svc.secret!)
      .set('DPoP', await proof(`${ISSUER}/token`, 'POST'))
      .send({ grant_type: 'client_credentials', resource: ADMIN });
    expect(res.status, JSON.stringify(res.body)).toBe(200);
    const bound = res.body.access_token as string;
    const ath = createHash('sha256').update(bound).digest('base64url');
    const once = await proof(`${ISSUER}/admin/v1/clients`, 'GET', { ath });
    await a().request.get('/admin/v1/clients').set('Authorization', `DPoP ${bound}`).set('DPoP', once).expect(200);
    const replayed = await b().request.get('/admin/v1/clients').set('Authorization', `DPoP ${bound}`).set('DPoP', once);
    expectProblem(replayed, 401);
    expect(replayed.headers['www-authenticate']).toMatch(/^DPoP .*error="invalid_dpop_proof"/);
    // a fresh proof works at the other instance
    await b().request.get('/admin/v1/clients').set('Authorization', `DPoP ${bound}`).set('DPoP', await proof(`${ISSUER}/admin/v1/clients`, 'GET', { ath })).expect(200);
  });
});
