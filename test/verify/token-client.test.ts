// createTokenClient against a stub token endpoint: request shape, caching until
// shortly before expiry, de-duplication, errors. (The same client against a
// real Gatehouse is in gatehouse.test.ts.)
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it, vi } from 'vitest';
import { createTokenClient, TokenRequestError, type TokenClient } from '../../src/verify/index.ts';

interface Seen {
  authorization: string | undefined;
  form: Record<string, string>;
}

describe('createTokenClient', () => {
  let server: http.Server;
  let issuer: string;
  const seen: Seen[] = [];
  let reply: (form: Record<string, string>) => { status: number; body: unknown } = () => ({ status: 500, body: {} });
  let hold: Promise<void> | undefined;
  let counter = 0;
  let metadataIssuer: string | undefined;

  beforeAll(async () => {
    server = http.createServer((req, res) => {
      const send = (status: number, body: unknown) => {
        res.writeHead(status, { 'content-type': 'application/json' });
        res.end(JSON.stringify(body));
      };
      if (req.url === '/.well-known/openid-configuration') return send(200, { issuer: metadataIssuer ?? issuer, token_endpoint: `${issuer}/token`, jwks_uri: `${issuer}/jwks` });
      if (req.url !== '/token' || req.method !== 'POST') return send(404, {});
      let raw = '';
      req.on('data', (c: Buffer) => (raw += c.toString()));
      req.on('end', () => {
        void (async () => {
          const form = Object.fromEntries(new URLSearchParams(raw));
          seen.push({ authorization: req.headers.authorization, form });
          if (hold) await hold;
          const r = reply(form);
          send(r.status, r.body);
        })();
      });
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    issuer = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  afterAll(async () => {
    await new Promise<void>((r) => server.close(() => r()));
  });
  beforeEach(() => {
    seen.length = 0;
    hold = undefined;
    reply = (form) => ({
      status: 200,
      body: { access_token: `token-${++counter}`, token_type: 'Bearer', expires_in: 300, scope: form.scope ?? 'all' },
    });
    vi.useFakeTimers({ toFake: ['Date'] });
  });
  afterEach(() => {
    vi.useRealTimers();
  });

  const client = (extra: Partial<Parameters<typeof createTokenClient>[0]> = {}): TokenClient =>
    createTokenClient({ issuer, clientId: 'orders service', clientSecret: 's3cr:t+/=', ...extra });
  const advance = (seconds: number) => vi.setSystemTime(new Date(Date.now() + seconds * 1000));

  it('requests client_credentials at the discovered token endpoint with client_secret_basic', async () => {
    const tokens = client();
    const t = await tokens.clientCredentials({ resource: 'https://inventory.example.com', scope: ['inventory:read', 'inventory:write'] });
    expect(t).toMatchObject({ accessToken: expect.stringMatching(/^token-/), tokenType: 'Bearer', scope: 'inventory:read inventory:write' });
    expect(t.expiresAt).toBeGreaterThan(Date.now() + 290_000);
    expect(seen).toHaveLength(1);
    expect(seen[0]!.form).toEqual({ grant_type: 'client_credentials', resource: 'https://inventory.example.com', scope: 'inventory:read inventory:write' });
    const basic = Buffer.from(seen[0]!.authorization!.replace(/^Basic /, ''), 'base64').toString();
    expect(basic).toBe(`${encodeURIComponent('orders service')}:${encodeURIComponent('s3cr:t+/=')}`);
  });

  it('client_secret_post puts the credentials in the body', async () => {
    await client({ authMethod: 'client_secret_post', tokenEndpoint: `${issuer}/token` }).clientCredentials({ resource: 'urn:x' });
    expect(seen[0]!.authorization).toBeUndefined();
    expect(seen[0]!.form).toMatchObject({ client_id: 'orders service', client_secret: 's3cr:t+/=' });
  });

  it('caches per (resource, scope) until shortly before expiry', async () => {
    const tokens = client();
    const a = await tokens.clientCredentials({ resource: 'urn:a', scope: 'x y' });
    expect(await tokens.clientCredentials({ resource: 'urn:a', scope: 'y x' })).toEqual(a); // scope order does not matter
    const b = await tokens.clientCredentials({ resource: 'urn:b', scope: 'x y' });
    const c = await tokens.clientCredentials({ resource: 'urn:a', scope: 'x' });
    expect(new Set([a.accessToken, b.accessToken, c.accessToken]).size).toBe(3);
    expect(seen).toHaveLength(3);
    advance(265); // 300 s token, refreshed 30 s before expiry
    expect((await tokens.clientCredentials({ resource: 'urn:a', scope: 'x y' })).accessToken).toBe(a.accessToken);
    expect(seen).toHaveLength(3);
    advance(10);
    expect((await tokens.clientCredentials({ resource: 'urn:a', scope: 'x y' })).accessToken).not.toBe(a.accessToken);
    expect(seen).toHaveLength(4);
  });

  it('short-lived tokens are refreshed at half their lifetime at the latest', async () => {
    reply = () => ({ status: 200, body: { access_token: `token-${++counter}`, token_type: 'Bearer', expires_in: 40 } });
    const tokens = client();
    const a = await tokens.clientCredentials({ resource: 'urn:a' });
    advance(15);
    expect((await tokens.clientCredentials({ resource: 'urn:a' })).accessToken).toBe(a.accessToken);
    advance(10);
    expect((await tokens.clientCredentials({ resource: 'urn:a' })).accessToken).not.toBe(a.accessToken);
  });

  it('concurrent calls share one request', async () => {
    let release!: () => void;
    hold = new Promise<void>((r) => (release = r));
    const tokens = client();
    const calls = Array.from({ length: 5 }, () => tokens.clientCredentials({ resource: 'urn:a', scope: 'x' }));
    await vi.waitFor(() => expect(seen).toHaveLength(1));
    release();
    const results = await Promise.all(calls);
    expect(new Set(results.map((r) => r.accessToken)).size).toBe(1);
    expect(seen).toHaveLength(1);
  });

  it('refusals become TokenRequestError and are not cached', async () => {
    reply = () => ({ status: 400, body: { error: 'invalid_scope', error_description: 'nope' } });
    const tokens = client();
    const err = await tokens.clientCredentials({ resource: 'urn:a', scope: 'admin' }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(TokenRequestError);
    expect(err).toMatchObject({ status: 400, error: 'invalid_scope', description: 'nope' });
    await tokens.clientCredentials({ resource: 'urn:a', scope: 'admin' }).catch(() => undefined);
    expect(seen).toHaveLength(2);
    reply = () => ({ status: 200, body: { nothing: true } });
    expect(await tokens.clientCredentials({ resource: 'urn:a' }).catch((e: unknown) => e)).toMatchObject({ error: 'invalid_response' });
  });

  it('an unreachable issuer → TokenRequestError with status 0', async () => {
    const dead = createTokenClient({ issuer: 'http://127.0.0.1:9', clientId: 'a', clientSecret: 'b', timeout: 2000 });
    expect(await dead.clientCredentials().catch((e: unknown) => e)).toMatchObject({ name: 'TokenRequestError', status: 0, error: 'request_failed' });
    const deadEndpoint = createTokenClient({ issuer, tokenEndpoint: 'http://127.0.0.1:9/token', clientId: 'a', clientSecret: 'b', timeout: 2000 });
    expect(await deadEndpoint.clientCredentials().catch((e: unknown) => e)).toMatchObject({ status: 0 });
  });

  it('exchangeForDownstream sends an RFC 8693 request and caches per subject token', async () => {
    reply = (form) => ({
      status: 200,
      body: { access_token: `x-${++counter}`, token_type: 'Bearer', expires_in: 120, scope: form.scope, issued_token_type: 'urn:ietf:params:oauth:token-type:access_token' },
    });
    const tokens = client();
    const a = await tokens.exchangeForDownstream('subject-1', { audience: 'https://payments.example.com', scope: 'payments:read' });
    expect(a).toMatchObject({ tokenType: 'Bearer', scope: 'payments:read', issuedTokenType: 'urn:ietf:params:oauth:token-type:access_token' });
    expect(seen[0]!.form).toEqual({
      grant_type: 'urn:ietf:params:oauth:grant-type:token-exchange',
      subject_token: 'subject-1',
      subject_token_type: 'urn:ietf:params:oauth:token-type:access_token',
      requested_token_type: 'urn:ietf:params:oauth:token-type:access_token',
      audience: 'https://payments.example.com',
      scope: 'payments:read',
    });
    expect(seen[0]!.authorization).toMatch(/^Basic /);
    expect(await tokens.exchangeForDownstream('subject-1', { audience: 'https://payments.example.com', scope: 'payments:read' })).toEqual(a);
    await tokens.exchangeForDownstream('subject-2', { audience: 'https://payments.example.com', scope: 'payments:read' });
    await tokens.exchangeForDownstream('subject-1', { resource: 'https://payments.example.com' });
    expect(seen).toHaveLength(3);
    expect(seen[2]!.form.resource).toBe('https://payments.example.com');
    await expect(tokens.exchangeForDownstream('', { audience: 'x' })).rejects.toThrow(TypeError);
    await expect(tokens.exchangeForDownstream('s', {})).rejects.toThrow(TypeError);
  });

  it('refuses metadata naming another issuer', async () => {
    metadataIssuer = 'https://evil.example.com';
    try {
      const tokens = createTokenClient({ issuer, clientId: 'a', clientSecret: 'b' });
      const err = await tokens.clientCredentials().catch((e: unknown) => e);
      expect(err).toMatchObject({ status: 0, description: 'the token endpoint could not be discovered' });
      expect(String((err as Error).cause)).toMatch(/names the issuer/);
      expect(seen).toHaveLength(0);
    } finally {
      metadataIssuer = undefined;
    }
  });
});
