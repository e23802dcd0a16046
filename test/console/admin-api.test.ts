// The admin API operations the console added: client search and status
// filter, a role's members, MFA reset, and the overview's statistics. Each
// needs its own scope, pages like every list, and is audited when it changes
// something.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createAccount } from '../../src/accounts/store.ts';
import { StatsView, UserView } from '../../src/admin/schemas.ts';
import { createClient } from '../../src/clients/store.ts';
import { recentCounts } from '../../src/metrics/recent.ts';
import { addRoleToAccount, createRole } from '../../src/resources/roles.ts';
import { ADMIN_RESOURCE } from '../../src/resources/store.ts';
import { createTestApp, type TestApp } from '../helpers/app.ts';
import { adminClient, adminToken, api, basic, expectProblem, expectShape } from './../admin/helpers.ts';

describe('admin API additions for the console', () => {
  let t: TestApp;
  let full: string;
  beforeAll(async () => {
    t = await createTestApp();
    full = await adminToken(t, ['gatehouse:admin']);
  });
  afterAll(async () => {
    await t?.close();
  });

  it('GET /clients?q=&status= narrows the list, pages keep the filter, and bad filters are 400', async () => {
    const db = t.gatehouse.db.prisma;
    for (const [id, name] of [
      ['shop-web', 'Shop web'],
      ['shop-api', 'SHOP backend'],
      ['billing', 'Billing'],
    ] as const) {
      await createClient(db, { id, name, grants: ['client_credentials'], disabled: id === 'shop-api' });
    }
    const ids = async (q: string) => (await api(t, full, 'get', `/clients?${q}`).expect(200)).body.items.map((c: { id: string }) => c.id);
    expect(await ids('q=shop')).toEqual(['shop-api', 'shop-web']);
    expect(await ids('q=BACKEND')).toEqual(['shop-api']);
    expect(await ids('q=shop&status=disabled')).toEqual(['shop-api']);
    expect(await ids('q=shop&status=enabled')).toEqual(['shop-web']);
    expect(await ids('q=%25')).toEqual([]); // LIKE's wildcards are plain characters
    expect(await ids('q=shop_web')).toEqual([]);
    const first = await api(t, full, 'get', '/clients?q=shop&limit=1').expect(200);
    expect(first.headers.link).toContain('q=shop');
    const next = await api(t, full, 'get', `/clients?q=shop&limit=1&cursor=${first.body.nextCursor as string}`).expect(200);
    expect(next.body.items.map((c: { id: string }) => c.id)).toEqual(['shop-web']);
    expectProblem(await api(t, full, 'get', '/clients?status=gone'), 400);
  });

  it('GET /roles/{name}/members lists the people holding a role, a page at a time, with the people read scope', async () => {
    const db = t.gatehouse.db.prisma;
    await createRole(db, { name: 'auditors', resource: ADMIN_RESOURCE, scopes: ['gatehouse:audit:read'] });
    const people = [];
    for (const e of ['m1@example.com', 'm2@example.com', 'm3@example.com']) {
      const a = await createAccount(db, { email: e, name: null, emailVerified: true });
      await addRoleToAccount(db, a.id, 'auditors');
      people.push(a.id);
    }
    const seen: string[] = [];
    let cursor: string | null = null;
    do {
      const res: { body: { items: unknown[]; nextCursor: string | null } } = await api(t, full, 'get', `/roles/auditors/members?limit=2${cursor ? `&cursor=${cursor}` : ''}`).expect(200);
      for (const u of res.body.items) seen.push(expectShape(UserView, u).id);
      cursor = res.body.nextCursor;
    } while (cursor);
    expect(seen).toEqual([...people].sort());
    expectProblem(await api(t, full, 'get', '/roles/nope/members'), 404);
    expectProblem(await api(t, await adminToken(t, ['gatehouse:resources:read']), 'get', '/roles/auditors/members'), 403);
    await api(t, await adminToken(t, ['gatehouse:users:read']), 'get', '/roles/auditors/members').expect(200);
  });

  it("POST /users/{id}/mfa:reset turns a person's MFA off, needs the people write scope, and is audited", async () => {
    const db = t.gatehouse.db.prisma;
    const a = await createAccount(db, { email: 'mfa@example.com', name: null, emailVerified: true });
    expectProblem(await api(t, await adminToken(t, ['gatehouse:users:read']), 'post', `/users/${a.id}/mfa:reset`), 403);
    const res = await api(t, full, 'post', `/users/${a.id}/mfa:reset`).expect(200);
    expect(expectShape(UserView, res.body)).toMatchObject({ id: a.id, mfaEnabled: false });
    expect(res.headers.etag).toBe(`"${res.body.version as number}"`);
    const events = await api(t, full, 'get', `/audit-events?action=user.reset_mfa&target_id=${a.id}`).expect(200);
    expect(events.body.items).toHaveLength(1);
    expectProblem(await api(t, full, 'post', '/users/00000000-0000-0000-0000-000000000000/mfa:reset'), 404);
  });

  it('GET /stats: counts and the last hour, with the audit read scope only', async () => {
    expectProblem(await api(t, await adminToken(t, ['gatehouse:clients:read']), 'get', '/stats'), 403);
    expectProblem(await api(t, undefined, 'get', '/stats'), 401);
    const reader = await adminToken(t, ['gatehouse:audit:read']);
    const before = expectShape(StatsView, (await api(t, reader, 'get', '/stats').expect(200)).body);
    expect(before.lastHour.perMinute).toHaveLength(60);
    // one more token, one refused token request
    const c = await adminClient(t, ['gatehouse:audit:read']);
    await t.request.post('/token').type('form').set('Authorization', basic(c.id, c.secret)).send({ grant_type: 'client_credentials', resource: ADMIN_RESOURCE }).expect(200);
    await t.request.post('/token').type('form').set('Authorization', basic(c.id, 'wrong')).send({ grant_type: 'client_credentials' }).expect(401);
    const after = expectShape(StatsView, (await api(t, reader, 'get', '/stats').expect(200)).body);
    expect(after.lastHour.tokensIssued).toBe(before.lastHour.tokensIssued + 1);
    expect(after.lastHour.tokenErrors).toBe(before.lastHour.tokenErrors + 1);
    expect(after.counts.clients).toBe(before.counts.clients + 1);
    expect(after.lastHour.requests).toBeGreaterThan(before.lastHour.requests);
    expect(after.counts.apis).toBeGreaterThanOrEqual(1);
  });

  it('the last-hour counters forget what is older than an hour', () => {
    const r = recentCounts();
    const t0 = Date.UTC(2026, 0, 1, 12, 0, 30);
    r.add('tokens', t0);
    r.add('tokens', t0 + 5_000);
    r.add('loginFailures', t0 + 30 * 60_000);
    expect(r.lastHour(t0 + 30 * 60_000)).toMatchObject({ tokensIssued: 2, logins: { failure: 1 } });
    const later = r.lastHour(t0 + 60 * 60_000 + 1_000);
    expect(later.tokensIssued, 'the 12:00 minute has left the window').toBe(0);
    expect(later.logins.failure).toBe(1);
    expect(later.perMinute.at(-1)!.minute).toBe('2026-01-01T13:00:00.000Z');
    // a bucket reused an hour later starts from zero
    r.add('tokens', t0 + 60 * 60_000);
    expect(r.lastHour(t0 + 60 * 60_000).tokensIssued).toBe(1);
  });
});
