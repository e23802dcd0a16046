// Interop: passport-openidconnect (0.1.2), set up as its README shows, in a
// real Express app on a local port, signs a person in through Gatehouse (a
// real listening server) for a web client registered with exactly one
// --resource, and gets the person's claims from userinfo (/me).
// The library does no discovery, so its endpoints are given explicitly, and
// it has no PKCE option (a confidential client needs none).
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import express from 'express';
import session from 'express-session';
import passport from 'passport';
import OpenIDConnectStrategy, { type Profile } from 'passport-openidconnect';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createResource } from '../../src/resources/store.ts';
import { createTestApp, type TestApp } from '../helpers/app.ts';
import { freePort } from '../server/process.ts';
import { Browser, createUser, createWebClient, isConsentPage, isLoginPage, page, redirect, submitConsent, submitLogin, type TestClient } from './flow.ts';

const API = 'https://notes-api.example.com';

function listen(server: Server, port = 0): Promise<number> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, '127.0.0.1', () => resolve((server.address() as AddressInfo).port));
  });
}

const close = (server: Server | undefined) => new Promise<void>((resolve) => (server ? server.close(() => resolve()) : resolve()));

/** What the app knows about the signed-in person. */
interface AppUser {
  issuer: string;
  sub: string;
  /** the userinfo answer, as the library parsed it */
  userinfo: Profile;
}

describe('passport-openidconnect signs in through Gatehouse', () => {
  let t: TestApp;
  let gatehouse: Server;
  let app: Server;
  let appBase: string;
  let issuer: string;
  let client: TestClient;

  beforeAll(async () => {
    const port = await freePort();
    issuer = `http://127.0.0.1:${port}`;
    t = await createTestApp({ env: { ISSUER: issuer } });
    gatehouse = createServer(t.gatehouse.app.callback());
    await listen(gatehouse, port);

    app = createServer();
    appBase = `http://127.0.0.1:${await listen(app)}`;

    await createUser(t, 'pat@example.com', { name: 'Pat Passport' });
    await createResource(t.gatehouse.db.prisma, { identifier: API, scopes: ['notes:read'] });
    client = await createWebClient(t, {
      name: 'Notes (passport)',
      resources: [API], // exactly one: the case that used to bind every login's token to the API
      scopes: ['openid', 'profile', 'email', 'notes:read'],
      redirectUris: [`${appBase}/cb`],
      authMethod: 'client_secret_post', // the library sends its secret in the form
    });

    // The library's README set-up; a verify function of nine arguments asks
    // it to load the userinfo profile.
    passport.use(
      new OpenIDConnectStrategy(
        {
          issuer,
          authorizationURL: `${issuer}/auth`,
          tokenURL: `${issuer}/token`,
          userInfoURL: `${issuer}/me`,
          clientID: client.id,
          clientSecret: client.secret!,
          callbackURL: `${appBase}/cb`,
          scope: ['profile', 'email'],
        },
        (iss: string, uiProfile: object, _idProfile: object, _ctx: object, idToken: string | object, _at: string | object, _rt: string, _params: unknown, cb: OpenIDConnectStrategy.VerifyCallback) => {
          const claims = JSON.parse(Buffer.from(String(idToken).split('.')[1]!, 'base64url').toString()) as { sub: string };
          const user: AppUser = { issuer: iss, sub: claims.sub, userinfo: uiProfile as Profile };
          cb(null, user);
        },
      ),
    );
    passport.serializeUser((user, cb) => cb(null, user));
    passport.deserializeUser((user: AppUser, cb) => cb(null, user));

    const web = express();
    web.use(session({ secret: 'passport-test-session-secret', resave: false, saveUninitialized: false }));
    web.use(passport.authenticate('session'));
    web.get('/login', passport.authenticate('openidconnect'));
    web.get('/cb', passport.authenticate('openidconnect', { failureRedirect: '/failed', failureMessage: true }), (_req, res) => res.redirect('/'));
    web.get('/', (req, res) => {
      res.json(req.user ?? null);
    });
    app.on('request', web);
  });
  afterAll(async () => {
    await close(app);
    await close(gatehouse);
    await t?.close();
  });

  it('logs in and gets the userinfo claims', async () => {
    // the person's browser: one cookie jar for the app, the flow.ts browser for Gatehouse
    let appCookie = '';
    const visitApp = async (url: string) => {
      const res = await fetch(url, { redirect: 'manual', headers: appCookie ? { cookie: appCookie } : {} });
      const set = res.headers.get('set-cookie');
      if (set) appCookie = set.split(';')[0]!;
      return res;
    };

    const start = await visitApp(`${appBase}/login`);
    expect(start.status).toBe(302);
    const authorize = new URL(start.headers.get('location')!);
    expect(`${authorize.origin}${authorize.pathname}`).toBe(`${issuer}/auth`);
    expect(authorize.searchParams.get('resource')).toBeNull();

    const b = new Browser(t);
    let step = await b.get(`${authorize.pathname}${authorize.search}`);
    const login = page(step);
    expect(isLoginPage(login)).toBe(true);
    step = await submitLogin(b, login, 'pat@example.com', 'correct horse battery staple');
    if (step.kind === 'page' && isConsentPage(step.page)) step = await submitConsent(b, step.page, 'approve');
    const callback = redirect(step);
    expect(`${callback.origin}${callback.pathname}`).toBe(`${appBase}/cb`);

    // the app redeems the code at /token and asks /me, server to server
    const back = await visitApp(callback.href);
    expect(back.status, await back.clone().text()).toBe(302);
    expect(back.headers.get('location')).toBe('/');

    const me = (await (await visitApp(`${appBase}/`)).json()) as AppUser;
    expect(me.issuer).toBe(issuer);
    expect(me.sub).toEqual(expect.any(String));
    expect(me.userinfo).toMatchObject({ id: me.sub, displayName: 'Pat Passport', emails: [{ value: 'pat@example.com' }] });
  });
});
