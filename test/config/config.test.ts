import { randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { ConfigError, ENV_VARIABLES, loadConfig } from '../../src/config/config.ts';

const KEK = Buffer.alloc(32, 7).toString('base64');
const COOKIE = 'c'.repeat(40);
const tmp = () => mkdtempSync(path.join(os.tmpdir(), 'gh-config-'));

function error(env: Record<string, string>): string {
  try {
    loadConfig({ DATA_DIR: tmp(), ...env });
  } catch (err) {
    expect(err).toBeInstanceOf(ConfigError);
    expect((err as Error).message).not.toContain('\n');
    return (err as Error).message;
  }
  throw new Error('expected a ConfigError');
}

describe('configuration', () => {
  it('.env.example documents every variable', () => {
    const example = readFileSync(new URL('../../.env.example', import.meta.url), 'utf8');
    for (const name of ENV_VARIABLES) expect(example).toMatch(new RegExp(`^# ${name}=`, 'm'));
  });

  it('has the documented defaults', () => {
    const c = loadConfig({ DATA_DIR: tmp() });
    expect(c.port).toBe(3000);
    expect(c.host).toBe('127.0.0.1');
    expect(c.trustProxy).toEqual({ mode: 'none' });
    expect(c.outboundAllowlist).toEqual({ hosts: [], cidrs: [] });
    expect(c.issuer).toBe('http://localhost:3000');
    expect(c.workers).toBe(1);
    expect(c.logLevel).toBe('info');
    expect(c.keyRotationLeadSeconds).toBe(600);
    expect(c.metricsToken).toBeUndefined();
    expect(c.databaseUrl).toBeUndefined();
    expect(c.login).toEqual({ maxFailures: 10, lockSeconds: 300, maxLockSeconds: 3600, ipMaxFailures: 50 });
    expect(c.refreshToken).toEqual({ lifetimeSeconds: 30 * 86400, idleSeconds: 7 * 86400, retrySeconds: 60 });
  });

  it('REFRESH_TOKEN_RETRY_SECONDS=0 turns the retry of an undelivered rotation off', () => {
    expect(loadConfig({ DATA_DIR: tmp(), REFRESH_TOKEN_RETRY_SECONDS: '0' }).refreshToken.retrySeconds).toBe(0);
  });

  it('derives the issuer from PORT and strips a trailing slash', () => {
    expect(loadConfig({ DATA_DIR: tmp(), PORT: '8080' }).issuer).toBe('http://localhost:8080');
    expect(loadConfig({ DATA_DIR: tmp(), ISSUER: 'https://id.example.com/' }).issuer).toBe('https://id.example.com');
  });

  it.each([
    [{ PORT: 'eighty' }, 'invalid PORT: must be a whole number'],
    [{ PORT: '70000' }, 'invalid PORT: must be at most 65535'],
    [{ WORKERS: '0' }, 'invalid WORKERS: must be at least 1'],
    [{ LOG_LEVEL: 'loud' }, 'invalid LOG_LEVEL'],
    [{ ISSUER: 'not a url' }, 'invalid ISSUER'],
    [{ ISSUER: 'ftp://x.example' }, 'invalid ISSUER'],
    [{ ISSUER: 'https://x.example/?a=1' }, 'invalid ISSUER: must not have a query or fragment'],
    [{ DATABASE_URL: 'mysql://x' }, 'invalid DATABASE_URL: must be a postgresql:// connection string'],
    [{ KEY_ENCRYPTION_KEY: 'c2hvcnQ=' }, 'invalid KEY_ENCRYPTION_KEY: must be 32 bytes, base64-encoded'],
    [{ COOKIE_SECRETS: 'short' }, 'invalid COOKIE_SECRETS: each secret must be at least 32 characters'],
    [{ METRICS_TOKEN: 'x' }, 'invalid METRICS_TOKEN: must be at least 16 characters, or off'],
    [{ TRUST_PROXY: 'true' }, 'invalid TRUST_PROXY: `true` would believe any forged X-Forwarded-For; give the number of proxies in front (e.g. 1) or their CIDRs (e.g. 10.0.0.0/8)'],
    [{ TRUST_PROXY: 'yes' }, 'invalid TRUST_PROXY: "yes" is neither a hop count nor a CIDR'],
    [{ TRUST_PROXY: '21' }, 'invalid TRUST_PROXY: a hop count must be at most 20'],
    [{ TRUST_PROXY: '10.0.0.0/33' }, 'invalid TRUST_PROXY: "10.0.0.0/33" is neither a hop count nor a CIDR'],
    [{ TRUST_PROXY: '10.0.0.0/8,fd00::/129' }, 'invalid TRUST_PROXY: "fd00::/129" is neither'],
    [{ TRUST_PROXY: '1,10.0.0.0/8' }, 'invalid TRUST_PROXY: "1" is neither'],
    [{ TRUST_PROXY: 'fe80::1%eth0/64' }, 'invalid TRUST_PROXY: "fe80::1%eth0/64" is neither'],
    [{ OUTBOUND_ALLOWLIST: 'https://hooks.internal' }, 'invalid OUTBOUND_ALLOWLIST: "https://hooks.internal" is neither a host name nor a CIDR'],
    [{ OUTBOUND_ALLOWLIST: '10.0.0.0/8,*.internal' }, 'invalid OUTBOUND_ALLOWLIST: "*.internal" is neither'],
    [{ OUTBOUND_ALLOWLIST: '300.1.1.1/8' }, 'invalid OUTBOUND_ALLOWLIST: "300.1.1.1/8" is neither'],
    [{ KEY_ROTATION_LEAD_SECONDS: '-5' }, 'invalid KEY_ROTATION_LEAD_SECONDS'],
    [{ REFRESH_TOKEN_RETRY_SECONDS: '-1' }, 'invalid REFRESH_TOKEN_RETRY_SECONDS: must be a whole number'],
    [{ REFRESH_TOKEN_RETRY_SECONDS: '3601' }, 'invalid REFRESH_TOKEN_RETRY_SECONDS: must be at most 3600'],
  ])('rejects %o with one line naming the variable', (env, message) => {
    expect(error(env)).toContain(message);
  });

  it('TRUST_PROXY: false or 0 is none, a number is a hop count, anything else a list of CIDRs (normalised)', () => {
    const trust = (v: string) => loadConfig({ DATA_DIR: tmp(), TRUST_PROXY: v }).trustProxy;
    expect(trust('false')).toEqual({ mode: 'none' });
    expect(trust('0')).toEqual({ mode: 'none' });
    expect(trust('2')).toEqual({ mode: 'hops', hops: 2 });
    expect(trust(' 10.0.0.0/8, FD00::/8 ,[::1]/128,192.0.2.7,::ffff:172.16.0.0/108')).toEqual({
      mode: 'cidrs',
      cidrs: ['10.0.0.0/8', 'fd00::/8', '::1/128', '192.0.2.7/32', '172.16.0.0/12'],
    });
  });

  it('OUTBOUND_ALLOWLIST: host names (lower-cased) and CIDRs', () => {
    expect(loadConfig({ DATA_DIR: tmp(), OUTBOUND_ALLOWLIST: '127.0.0.1/32, Backchannel.Internal.,::1' }).outboundAllowlist).toEqual({
      hosts: ['backchannel.internal'],
      cidrs: ['127.0.0.1/32', '::1/128'],
    });
  });

  it('HOST: 127.0.0.1 by default, 0.0.0.0 in production, HOST overrides both', () => {
    expect(loadConfig({ DATA_DIR: tmp() }).host).toBe('127.0.0.1');
    expect(loadConfig({ DATA_DIR: tmp(), HOST: '0.0.0.0' }).host).toBe('0.0.0.0');
  });

  it('METRICS_TOKEN=off means /metrics is open', () => {
    expect(loadConfig({ DATA_DIR: tmp(), METRICS_TOKEN: 'off' }).metricsToken).toBeUndefined();
  });

  it('treats empty values as unset', () => {
    expect(loadConfig({ DATA_DIR: tmp(), PORT: '', ISSUER: '' }).port).toBe(3000);
  });

  it('splits COOKIE_SECRETS, newest first', () => {
    const c = loadConfig({ DATA_DIR: tmp(), COOKIE_SECRETS: `${'a'.repeat(32)}, ${'b'.repeat(32)}`, KEY_ENCRYPTION_KEY: KEK });
    expect(c.cookieSecrets).toEqual(['a'.repeat(32), 'b'.repeat(32)]);
  });

  describe('NODE_ENV=production', () => {
    const full = {
      NODE_ENV: 'production',
      DATABASE_URL: 'postgresql://db.internal/gatehouse',
      COOKIE_SECRETS: randomBytes(32).toString('base64url'),
      KEY_ENCRYPTION_KEY: randomBytes(32).toString('base64'),
      ISSUER: 'https://id.example.com',
      METRICS_TOKEN: randomBytes(32).toString('hex'),
    };
    it('starts with real secrets and an https issuer', () => {
      expect(loadConfig(full).production).toBe(true);
    });
    it('listens on every interface unless HOST says otherwise', () => {
      expect(loadConfig(full).host).toBe('0.0.0.0');
      expect(loadConfig({ ...full, HOST: '10.1.2.3' }).host).toBe('10.1.2.3');
    });
    it.each(['DATABASE_URL', 'COOKIE_SECRETS', 'KEY_ENCRYPTION_KEY', 'ISSUER'] as const)('refuses to start without %s', (name) => {
      const env: Record<string, string> = { ...full };
      delete env[name];
      expect(error(env)).toBe(`NODE_ENV=production requires ${name}`);
    });
    it('refuses to start without METRICS_TOKEN, and says how to leave /metrics open', () => {
      const env: Record<string, string> = { ...full };
      delete env.METRICS_TOKEN;
      expect(error(env)).toBe('NODE_ENV=production requires METRICS_TOKEN (METRICS_TOKEN=off leaves /metrics open on purpose)');
      expect(loadConfig({ ...full, METRICS_TOKEN: 'off' }).metricsToken).toBeUndefined();
    });
    it('refuses the weak values development accepts, naming the variable only', () => {
      expect(error({ ...full, COOKIE_SECRETS: COOKIE })).toMatch(/^invalid COOKIE_SECRETS: is a repeated or sequential pattern/);
      expect(error({ ...full, KEY_ENCRYPTION_KEY: KEK })).toMatch(/^invalid KEY_ENCRYPTION_KEY: does not look random/);
    });
    it('refuses an http issuer', () => {
      expect(error({ ...full, ISSUER: 'http://id.example.com' })).toBe('invalid ISSUER: must be https:// when NODE_ENV=production');
    });
    it('never generates secrets', () => {
      const dir = tmp();
      expect(() => loadConfig({ ...full, KEY_ENCRYPTION_KEY: '', DATA_DIR: dir })).toThrow(ConfigError);
      expect(existsSync(path.join(dir, 'secrets.json'))).toBe(false);
    });
  });

  describe('development secrets', () => {
    it('are generated once under DATA_DIR, private to the owner, and reused', () => {
      const dir = tmp();
      const a = loadConfig({ DATA_DIR: dir });
      const file = path.join(dir, 'secrets.json');
      expect(statSync(file).mode & 0o777).toBe(0o600);
      const b = loadConfig({ DATA_DIR: dir });
      expect(b.cookieSecrets).toEqual(a.cookieSecrets);
      expect(b.keyEncryptionKey.equals(a.keyEncryptionKey)).toBe(true);
      expect(a.keyEncryptionKey).toHaveLength(32);
      expect(JSON.parse(readFileSync(file, 'utf8'))).toHaveProperty('keyEncryptionKey');
    });
    it('are not generated when the environment provides them', () => {
      const dir = tmp();
      loadConfig({ DATA_DIR: dir, COOKIE_SECRETS: COOKIE, KEY_ENCRYPTION_KEY: KEK });
      expect(existsSync(path.join(dir, 'secrets.json'))).toBe(false);
    });
    it('a corrupt secrets file is a clear error, not a silent regeneration', () => {
      const dir = tmp();
      writeFileSync(path.join(dir, 'secrets.json'), '{not json');
      expect(error({ DATA_DIR: dir })).toMatch(/secrets\.json is unreadable/);
    });
  });
});
