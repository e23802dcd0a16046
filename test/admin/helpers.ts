// Admin API test helpers: admin clients with chosen scopes, their tokens from
// /token (client_credentials), and authorised requests.
import { z } from 'zod';
import { expect } from 'vitest';
import type { Response } from 'supertest';
import { createClient, type ClientInput } from '../../src/clients/store.ts';
import { ADMIN_RESOURCE } from '../../src/resources/store.ts';
import type { TestApp } from '../helpers/app.ts';

export const BASE = '/admin/v1';

export function basic(id: string, secret: string): string {
  return `Basic ${Buffer.from(`${encodeURIComponent(id)}:${encodeURIComponent(secret)}`).toString('base64')}`;
}

export interface AdminClient {
  id: string;
  secret: string;
}

/** A client_credentials client for the admin API holding `scopes`. */
export async function adminClient(t: TestApp, scopes: string[], input: Partial<ClientInput> = {}): Promise<AdminClient> {
  const c = await createClient(t.gatehouse.db.prisma, {
    name: `admin ${scopes.join(' ')}`,
    grants: ['client_credentials'],
    resources: [ADMIN_RESOURCE],
    scopes,
    ...input,
  });
  return { id: c.client.id, secret: c.clientSecret! };
}

/** An access token for urn:gatehouse:admin from /token. */
export async function tokenFor(t: TestApp, client: AdminClient, scope?: string): Promise<string> {
  const form: Record<string, string> = { grant_type: 'client_credentials', resource: ADMIN_RESOURCE };
  if (scope) form.scope = scope;
  const res = await t.request.post('/token').type('form').set('Authorization', basic(client.id, client.secret)).send(form);
  expect(res.status, JSON.stringify(res.body)).toBe(200);
  return res.body.access_token as string;
}

/** A client with the scopes and a token carrying all of them. */
export async function adminToken(t: TestApp, scopes: string[]): Promise<string> {
  return tokenFor(t, await adminClient(t, scopes));
}

type Method = 'get' | 'post' | 'put' | 'patch' | 'delete';

/** An authorised admin API request (path relative to /admin/v1). */
export function api(t: TestApp, token: string | undefined, method: Method, path: string) {
  const req = t.request[method](`${BASE}${path}`);
  return token === undefined ? req : req.set('Authorization', `Bearer ${token}`);
}

/** Asserts an RFC 9457 problem response with the status (and, when given, the field named). */
export function expectProblem(res: Response, status: number, field?: string): void {
  expect(res.status, JSON.stringify(res.body)).toBe(status);
  expect(res.headers['content-type']).toMatch(/^application\/problem\+json/);
  expect(res.body).toMatchObject({ status, type: expect.stringMatching(/^urn:gatehouse:problem:/), title: expect.any(String), detail: expect.any(String) });
  expect(JSON.stringify(res.body)).not.toMatch(/\bat .*\.ts:\d+|node_modules/); // no stack trace
  if (field !== undefined) {
    expect(res.body.errors, JSON.stringify(res.body)).toEqual(expect.arrayContaining([expect.objectContaining({ field })]));
  }
}

/** Parses a response body with a response schema of the API (fails the test on drift). */
export function expectShape<S extends z.ZodType>(schema: S, body: unknown): z.output<S> {
  const r = schema.safeParse(body);
  expect(r.success, r.success ? '' : JSON.stringify(r.error.issues)).toBe(true);
  return r.data as z.output<S>;
}

export const ALL_SCOPES = [
  'gatehouse:clients:read',
  'gatehouse:clients:write',
  'gatehouse:users:read',
  'gatehouse:users:write',
  'gatehouse:resources:read',
  'gatehouse:resources:write',
  'gatehouse:keys:read',
  'gatehouse:keys:write',
  'gatehouse:audit:read',
];
