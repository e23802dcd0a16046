// The example services' plumbing: JSON errors, never a stack trace; refusals
// with a challenge; the audit line.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { callApi } from './http.ts';
import { HttpError, actorChain, createService, type LogEntry, type ServiceHandle } from './service.ts';

describe('createService', () => {
  let svc: ServiceHandle;
  const logs: LogEntry[] = [];
  const errors: string[] = [];
  const consoleError = console.error;

  beforeAll(async () => {
    console.error = (line: unknown) => void errors.push(String(line));
    svc = await createService({
      name: 'demo',
      // never reached: no test sends a token that would need its keys
      issuer: 'http://127.0.0.1:9',
      audience: 'https://demo.example',
      log: (e) => logs.push(e),
      routes: [
        { method: 'POST', path: '/echo/:id', public: true, handler: ({ params, body }) => ({ id: params.id, body }) },
        { method: 'GET', path: '/teapot', public: true, handler: () => { throw new HttpError(418, 'teapot', 'short and stout'); } },
        { method: 'GET', path: '/crash', public: true, handler: () => { throw new Error('secret internals'); } },
        { method: 'GET', path: '/private', scopes: ['demo:read'], handler: () => ({ ok: true }) },
      ],
    });
  });
  afterAll(async () => {
    console.error = consoleError;
    await svc?.close();
  });

  it('routes with path parameters and JSON bodies', async () => {
    expect(await callApi(`${svc.url}/echo/a%20b`, { body: { x: 1 } })).toMatchObject({ status: 200, body: { id: 'a b', body: { x: 1 } } });
  });

  it('answers errors as JSON: handler refusals, unknown routes, unreadable bodies, crashes (without details)', async () => {
    expect(await callApi(`${svc.url}/teapot`)).toMatchObject({ status: 418, body: { error: 'teapot', error_description: 'short and stout' } });
    expect(await callApi(`${svc.url}/nowhere`)).toMatchObject({ status: 404, body: { error: 'not_found' } });
    const bad = await callApi(`${svc.url}/echo/1`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: undefined });
    expect(bad.status).toBe(200); // no body at all is fine
    const res = await fetch(`${svc.url}/echo/1`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"x":' });
    expect(res.status).toBe(400);
    expect(await res.json()).toEqual({ error: 'invalid_request', error_description: 'the request body could not be read' });
    const crash = await callApi(`${svc.url}/crash`);
    expect(crash).toMatchObject({ status: 500, body: { error: 'server_error', error_description: 'the request failed' } });
    expect(JSON.stringify(crash.body)).not.toContain('secret internals');
    expect(errors.join('\n')).toContain('secret internals'); // the operator sees it
  });

  it('protected routes refuse without a token (401, bare challenge) and with a malformed one, before any key lookup', async () => {
    expect(await callApi(`${svc.url}/private`)).toMatchObject({ status: 401, challenge: 'Bearer realm="demo"' });
    const res = await callApi(`${svc.url}/private`, { token: 'not-a-jwt' });
    expect(res.status).toBe(401);
    expect(res.challenge).toBe('Bearer realm="demo", error="invalid_token", error_description="the token is malformed"');
  });

  it('writes one audit line per request', async () => {
    await callApi(`${svc.url}/teapot`);
    expect(logs.at(-1)).toMatchObject({ service: 'demo', event: 'request', method: 'GET', path: '/teapot', status: 418 });
  });

  it('actorChain: most recent actor first', () => {
    expect(actorChain(undefined)).toBeUndefined();
    expect(actorChain({ sub: 'payments-service', act: { sub: 'orders-service' } })).toBe('payments-service <- orders-service');
  });
});
