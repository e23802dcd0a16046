// docs/apache-mod-auth-openidc.md, run for real: Apache 2.4 with
// mod_auth_openidc, started with `apache2 -f FILE` (nothing under
// /etc/apache2 is read or changed), in front of a tiny local app. Apache also
// serves the self-signed TLS front that Gatehouse needs (mod_auth_openidc
// refuses http:// metadata, JWKS and introspection URLs). The recipe's blocks
// are taken from the document as written; only host names, ports, paths and
// secrets are swapped for the test's own.
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { chmodSync, chownSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, get as httpGet, type Server } from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createResource } from '../../src/resources/store.ts';
import { createClient } from '../../src/clients/store.ts';
import { createTestApp, type TestApp } from '../helpers/app.ts';
import { TEST_COOKIE_SECRET, TEST_KEK } from '../helpers/env.ts';
import { codeBlocks, runShell } from '../helpers/markdown.ts';
import { freePort, portOpen, REPO_ROOT, until } from '../server/process.ts';
import { Browser, createUser, isLoginPage, page, redirect, submitLogin } from '../sso/flow.ts';

const APACHE = '/usr/sbin/apache2';
const MODULES = '/usr/lib/apache2/modules';
const missing = [APACHE, `${MODULES}/mod_auth_openidc.so`, '/usr/bin/openssl', '/usr/bin/curl', '/usr/bin/jq'].filter((f) => !existsSync(f));
const RECIPE = readFileSync(path.join(REPO_ROOT, 'docs', 'apache-mod-auth-openidc.md'), 'utf8');

function replaceAll(text: string, map: Record<string, string>): string {
  let out = text;
  for (const [from, to] of Object.entries(map)) out = out.replaceAll(from, to);
  return out;
}

const bash = (script: string, cwd: string, env: NodeJS.ProcessEnv) => runShell(script, cwd, env, 120_000);

describe.skipIf(missing.length > 0)(`Apache mod_auth_openidc recipe${missing.length ? ` (skipped: ${missing.join(', ')} not installed)` : ''}`, () => {
  const blocks = codeBlocks(RECIPE);
  const shell = blocks.filter((b) => b.lang === 'sh');
  const apache = blocks.filter((b) => b.lang === 'apache');
  let tmp: string;
  let t: TestApp;
  let gatehouse: Server;
  let backend: Server;
  let httpd: ChildProcess | undefined;
  const ports = { tls: 0, gatehouse: 0, app: 0, jwks: 0, introspection: 0, backend: 0 };
  let issuer: string;
  const secrets: Record<string, string> = {};
  let shellEnv: NodeJS.ProcessEnv;

  beforeAll(async () => {
    expect(shell).toHaveLength(2);
    expect(apache).toHaveLength(3);
    for (const k of Object.keys(ports) as (keyof typeof ports)[]) ports[k] = await freePort();
    issuer = `https://127.0.0.1:${ports.tls}`;
    tmp = mkdtempSync(path.join(os.tmpdir(), 'gatehouse-apache-'));
    chmodSync(tmp, 0o755);
    const cert = path.join(tmp, 'cert.pem');
    const key = path.join(tmp, 'key.pem');
    execFileSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-days', '1', '-subj', '/CN=127.0.0.1', '-addext', 'subjectAltName=IP:127.0.0.1', '-keyout', key, '-out', cert], { stdio: 'ignore' });

    // Gatehouse, with its https issuer behind the TLS front
    t = await createTestApp({ env: { ISSUER: issuer } });
    gatehouse = createServer(t.gatehouse.app.callback());
    await new Promise<void>((r) => gatehouse.listen(ports.gatehouse, '127.0.0.1', r));
    await createUser(t, 'ada@example.com', { name: 'Ada Lovelace' });

    // the tiny app: shows what reached it
    backend = createServer((req, res) => {
      const claims = Object.fromEntries(Object.entries(req.headers).filter(([k]) => k.startsWith('oidc_claim_')));
      res.setHeader('Content-Type', 'application/json');
      res.end(JSON.stringify({ path: req.url, claims }));
    });
    await new Promise<void>((r) => backend.listen(ports.backend, '127.0.0.1', r));

    // the recipe's registration, as written
    const hosts = { 'https://id.example.com': issuer, 'https://notes.example.com': `http://127.0.0.1:${ports.app}` };
    shellEnv = { DATABASE_URL: t.database.url, COOKIE_SECRETS: TEST_COOKIE_SECRET, KEY_ENCRYPTION_KEY: TEST_KEK, DATA_DIR: path.join(tmp, '.data'), CURL_CA_BUNDLE: cert };
    const reg = await bash(`${replaceAll(shell[0]!.code, hosts)}\nprintf '%s\\n' "$NOTES_WEB_SECRET" "$NOTES_API_SECRET" "$REPORTS_SECRET"`, tmp, shellEnv);
    expect(reg.status, reg.stderr).toBe(0);
    const [web, api, reports] = reg.stdout.trim().split('\n').slice(-3);
    Object.assign(secrets, { NOTES_WEB_SECRET: web!, NOTES_API_SECRET: api!, REPORTS_SECRET: reports! });
    for (const s of Object.values(secrets)) expect(s).toMatch(/^[\w-]{40,}$/);

    // Apache: the TLS front, the app's host and the API's host (twice: JWKS, introspection)
    const cache = path.join(tmp, 'cache');
    mkdirSync(cache);
    mkdirSync(path.join(tmp, 'run'));
    const asRoot = process.getuid?.() === 0;
    if (asRoot) {
      // Apache's children drop root: they write the cache as www-data
      const uid = Number(execFileSync('id', ['-u', 'www-data'], { encoding: 'utf8' }));
      const gid = Number(execFileSync('id', ['-g', 'www-data'], { encoding: 'utf8' }));
      chownSync(cache, uid, gid);
      chownSync(path.join(tmp, 'run'), uid, gid);
    }
    const recipe = (code: string, apiPort?: number) =>
      replaceAll(code, {
        ...hosts,
        '127.0.0.1:8080': `127.0.0.1:${ports.backend}`,
        '/var/cache/apache2/mod_auth_openidc/cache': cache,
        '<NOTES_WEB_SECRET>': secrets.NOTES_WEB_SECRET!,
        '<NOTES_API_SECRET>': secrets.NOTES_API_SECRET!,
        '<a long random passphrase>': randomBytes(24).toString('base64url'),
        ...(apiPort ? { 'https://api.notes.example.com': `http://127.0.0.1:${apiPort}` } : {}),
      });
    const vhost = (port: number, body: string) => `<VirtualHost 127.0.0.1:${port}>\n  OIDCCABundlePath ${cert}\n${body}\n</VirtualHost>`;
    const mod = (name: string, file: string) => `LoadModule ${name}_module ${MODULES}/${file}`;
    const conf = [
      `ServerRoot ${tmp}`,
      'ServerName 127.0.0.1',
      `PidFile ${tmp}/run/apache.pid`,
      `DefaultRuntimeDir ${tmp}/run`,
      `ErrorLog ${tmp}/error.log`,
      'LogLevel warn auth_openidc:info',
      ...(asRoot ? ['User www-data', 'Group www-data'] : []),
      mod('mpm_event', 'mod_mpm_event.so'),
      mod('authn_core', 'mod_authn_core.so'),
      mod('authz_core', 'mod_authz_core.so'),
      mod('authz_user', 'mod_authz_user.so'),
      mod('socache_shmcb', 'mod_socache_shmcb.so'),
      mod('ssl', 'mod_ssl.so'),
      mod('proxy', 'mod_proxy.so'),
      mod('proxy_http', 'mod_proxy_http.so'),
      mod('auth_openidc', 'mod_auth_openidc.so'),
      'StartServers 1',
      'ServerLimit 1',
      'ThreadsPerChild 16',
      'MaxRequestWorkers 16',
      'MinSpareThreads 1',
      'MaxSpareThreads 16',
      ...Object.entries(ports)
        .filter(([k]) => k !== 'gatehouse' && k !== 'backend')
        .map(([, p]) => `Listen 127.0.0.1:${p}`),
      `<VirtualHost 127.0.0.1:${ports.tls}>\n  SSLEngine on\n  SSLCertificateFile ${cert}\n  SSLCertificateKeyFile ${key}\n  ProxyPass / http://127.0.0.1:${ports.gatehouse}/\n</VirtualHost>`,
      vhost(ports.app, recipe(apache[0]!.code)),
      vhost(ports.jwks, recipe(apache[1]!.code)),
      vhost(ports.introspection, recipe(apache[2]!.code)),
    ].join('\n');
    const confFile = path.join(tmp, 'apache.conf');
    writeFileSync(confFile, conf + '\n');
    execFileSync(APACHE, ['-t', '-f', confFile], { stdio: 'pipe' });
    httpd = spawn(APACHE, ['-f', confFile, '-DFOREGROUND'], { stdio: 'ignore' });
    for (const p of [ports.tls, ports.app, ports.jwks, ports.introspection]) await until(`apache on ${p}`, () => portOpen(p), 20_000);
  }, 120_000);

  afterAll(async () => {
    if (httpd && httpd.exitCode === null) {
      httpd.kill('SIGTERM');
      await new Promise((r) => httpd!.once('exit', r));
    }
    await new Promise<void>((r) => (backend ? backend.close(() => r()) : r()));
    await new Promise<void>((r) => (gatehouse ? gatehouse.close(() => r()) : r()));
    await t?.close();
    if (tmp) rmSync(tmp, { recursive: true, force: true });
  });

  const errorLog = () => (existsSync(path.join(tmp, 'error.log')) ? readFileSync(path.join(tmp, 'error.log'), 'utf8') : '');

  it('signs a person in through Gatehouse and hands the app their userinfo claims', async () => {
    // the person's browser, for the app: a navigation (mod_auth_openidc answers a script's fetch with 401)
    const cookies = new Map<string, string>();
    const visit = (url: string) =>
      new Promise<{ status: number; location: string | undefined; body: string }>((resolve, reject) => {
        const cookie = [...cookies].map(([k, v]) => `${k}=${v}`).join('; ');
        const req = httpGet(url, { headers: { accept: 'text/html', 'sec-fetch-mode': 'navigate', ...(cookie ? { cookie } : {}) } }, (res) => {
          for (const c of res.headers['set-cookie'] ?? []) {
            const [pair] = c.split(';');
            const eq = pair!.indexOf('=');
            cookies.set(pair!.slice(0, eq), pair!.slice(eq + 1));
          }
          let body = '';
          res.setEncoding('utf8').on('data', (d: string) => (body += d));
          res.on('end', () => resolve({ status: res.statusCode ?? 0, location: res.headers.location, body }));
        });
        req.on('error', reject);
      });
    const app = `http://127.0.0.1:${ports.app}`;
    const start = await visit(`${app}/protected/notes`);
    expect(start.status, errorLog()).toBe(302);
    const authorize = new URL(start.location!);
    expect(`${authorize.origin}${authorize.pathname}`).toBe(`${issuer}/auth`);
    expect(authorize.searchParams.get('code_challenge_method')).toBe('S256');

    const b = new Browser(t);
    const login = page(await b.get(`${authorize.pathname}${authorize.search}`));
    expect(isLoginPage(login)).toBe(true);
    const back = redirect(await submitLogin(b, login, 'ada@example.com', 'correct horse battery staple'));
    expect(back.href.startsWith(`${app}/protected/redirect_uri?`)).toBe(true);

    const done = await visit(back.href);
    expect(done.status, errorLog()).toBe(302);
    expect(done.location).toBe(`${app}/protected/notes`);
    const res = await visit(`${app}/protected/notes`);
    expect(res.status, errorLog()).toBe(200);
    const seen = JSON.parse(res.body) as { path: string; claims: Record<string, string> };
    expect(seen.path).toBe('/notes');
    // name and email come from userinfo (/me): the ID token carries only sub
    expect(seen.claims).toMatchObject({ oidc_claim_email: 'ada@example.com', oidc_claim_name: 'Ada Lovelace', oidc_claim_sub: expect.any(String) });
  });

  for (const mode of ['jwks', 'introspection'] as const) {
    it(`guards the API (${mode === 'jwks' ? 'JWT verified with the JWKS' : 'introspection by a --served-by client'})`, async () => {
      const api = `http://127.0.0.1:${ports[mode]}`;
      const call = await bash(replaceAll(shell[1]!.code, { 'https://id.example.com': issuer, 'https://api.notes.example.com': api }), tmp, { ...shellEnv, ...secrets });
      expect(call.status, `${call.stderr}\n${errorLog()}`).toBe(0);
      const seen = JSON.parse(call.stdout) as { path: string; claims: Record<string, string> };
      expect(seen.path).toBe('/api/notes');
      expect(seen.claims).toMatchObject({ oidc_claim_client_id: 'reports', oidc_claim_scope: 'notes:read' });

      const none = await fetch(`${api}/api/notes`);
      expect(none.status).toBe(401);
      expect(none.headers.get('www-authenticate')).toMatch(/^Bearer/);

      // a valid Gatehouse token for another API is refused by the audience check
      const db = t.gatehouse.db.prisma;
      const other = `https://other-${mode}.example.com`;
      await createResource(db, { identifier: other, scopes: ['other:read'] });
      const svc = await createClient(db, { name: `other ${mode}`, grants: ['client_credentials'], resources: [other], scopes: ['other:read'] });
      const tok = await t.request.post('/token').type('form').auth(svc.client.id, svc.clientSecret!).send({ grant_type: 'client_credentials' }).expect(200);
      const foreign = await fetch(`${api}/api/notes`, { headers: { authorization: `Bearer ${tok.body.access_token as string}` } });
      expect(foreign.status).toBe(401);
      expect(await foreign.text()).not.toContain('/api/notes'); // the app never saw it
    });
  }

  it('with introspection, a revoked token stops working at once', async () => {
    const tok = await t.request
      .post('/token')
      .type('form')
      .auth('reports', secrets.REPORTS_SECRET!)
      .send({ grant_type: 'client_credentials', resource: 'https://notes-api.example.com' })
      .expect(200);
    const at = tok.body.access_token as string;
    const api = `http://127.0.0.1:${ports.introspection}/api/notes`;
    expect((await fetch(api, { headers: { authorization: `Bearer ${at}` } })).status).toBe(200);
    await t.request.post('/token/revocation').type('form').auth('reports', secrets.REPORTS_SECRET!).send({ token: at }).expect(200);
    expect((await fetch(api, { headers: { authorization: `Bearer ${at}` } })).status).toBe(401);
  });
});
