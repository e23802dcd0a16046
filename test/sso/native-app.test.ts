// Native apps (RFC 8252): a public client with a private-use URI scheme or a
// loopback redirect signs people in with the code flow and PKCE.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestApp, type TestApp } from '../helpers/app.ts';
import { Browser, createUser, createWebClient, exchangeCode, pkce, signIn, type TestClient } from './flow.ts';

const APP_REDIRECT = 'com.example.notes:/oauth/callback';
const LOOPBACK_REDIRECT = 'http://127.0.0.1/callback';

describe('native apps', () => {
  let t: TestApp;
  let app: TestClient;
  beforeAll(async () => {
    t = await createTestApp({ env: { LOGIN_IP_MAX_FAILURES: '1000' } });
    await createUser(t, 'nina@example.com');
    app = await createWebClient(t, { name: 'Notes for iOS', public: true, firstParty: true, redirectUris: [APP_REDIRECT, LOOPBACK_REDIRECT] });
  });
  afterAll(async () => {
    await t?.close();
  });

  it.each([APP_REDIRECT, LOOPBACK_REDIRECT])('signs in and gets tokens with redirect URI %s', async (redirectUri) => {
    const { verifier, challenge } = pkce();
    const r = await signIn(
      new Browser(t),
      { client_id: app.id, redirect_uri: redirectUri, code_challenge: challenge, code_challenge_method: 'S256' },
      { email: 'nina@example.com' },
    );
    expect(r.callback.href.startsWith(redirectUri)).toBe(true);
    expect(r.code).toBeTruthy();
    const res = await exchangeCode(t, app, r.code!, verifier, redirectUri);
    expect(res.status, JSON.stringify(res.body)).toBe(200);
    expect(res.body.id_token).toBeTruthy();
  });
});
