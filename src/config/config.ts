// Reads and validates every environment variable Gatehouse understands.
// A bad value stops start-up with one line naming the variable.
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import { z } from 'zod';
import { parseTrustProxy, type TrustProxy } from '../http/client-address.ts';
import { parseOutboundAllowlist, type OutboundAllowlist } from '../http/ip.ts';
import { keyWeakness, secretWeakness } from './secret-strength.ts';

export type { OutboundAllowlist, TrustProxy };

export class ConfigError extends Error {}

const int = (min: number, max: number) =>
  z
    .string()
    .regex(/^\d+$/, 'must be a whole number')
    .transform(Number)
    .pipe(z.number().int().min(min, `must be at least ${min}`).max(max, `must be at most ${max}`));

const logLevels = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;

/** A value parsed by `parse`, whose Error message becomes the variable's one-line error. */
const parsedBy = <T>(parse: (raw: string) => T) =>
  z.string().transform((raw, ctx) => {
    try {
      return parse(raw);
    } catch (err) {
      ctx.addIssue({ code: 'custom', message: (err as Error).message });
      return z.NEVER;
    }
  });

const schema = z.object({
  NODE_ENV: z.string().optional(),
  DATABASE_URL: z
    .string()
    .regex(/^postgres(ql)?:\/\//, 'must be a postgresql:// connection string')
    .optional(),
  ISSUER: z
    .url({ message: 'must be an absolute http(s) URL' })
    .refine((u) => /^https?:\/\//.test(u), 'must be an http(s) URL')
    .refine((u) => !u.includes('?') && !u.includes('#'), 'must not have a query or fragment')
    .optional(),
  PORT: int(0, 65535).default(3000),
  // default: 127.0.0.1, or 0.0.0.0 in production (see loadConfig)
  HOST: z.string().min(1).optional(),
  COOKIE_SECRETS: z
    .string()
    .transform((s) => s.split(',').map((x) => x.trim()).filter(Boolean))
    .pipe(z.array(z.string().min(32, 'each secret must be at least 32 characters')).min(1, 'needs at least one secret'))
    .optional(),
  KEY_ENCRYPTION_KEY: z
    .string()
    .refine((s) => /^[A-Za-z0-9+/_-]+={0,2}$/.test(s) && Buffer.from(s, 'base64').length === 32, 'must be 32 bytes, base64-encoded')
    .optional(),
  WORKERS: int(1, 64).default(1),
  LOG_LEVEL: z.enum(logLevels).default('info'),
  KEY_ROTATION_LEAD_SECONDS: int(0, 30 * 86400).default(600),
  // `off`: /metrics deliberately open (production needs a token or this)
  METRICS_TOKEN: z
    .string()
    .refine((v) => v === 'off' || v.length >= 16, 'must be at least 16 characters, or off')
    .optional(),
  TRUST_PROXY: parsedBy(parseTrustProxy).default({ mode: 'none' }),
  OUTBOUND_ALLOWLIST: parsedBy(parseOutboundAllowlist).default({ hosts: [], cidrs: [] }),
  DATA_DIR: z.string().min(1).default('.data'),
  DB_POOL_SIZE: int(1, 200).default(10),
  DB_STATEMENT_TIMEOUT_MS: int(100, 600_000).default(10_000),
  REQUEST_TIMEOUT_MS: int(100, 600_000).default(30_000),
  CLEANUP_INTERVAL_SECONDS: int(1, 86400).default(60),
  CLIENT_SECRET_ROTATION_GRACE_SECONDS: int(0, 30 * 86400).default(86400),
  LOGIN_MAX_FAILURES: int(1, 1000).default(10),
  LOGIN_LOCK_SECONDS: int(1, 86400).default(300),
  LOGIN_MAX_LOCK_SECONDS: int(1, 7 * 86400).default(3600),
  LOGIN_IP_MAX_FAILURES: int(1, 100000).default(50),
  AUDIT_RETENTION_DAYS: int(1, 3650).default(90),
  REFRESH_TOKEN_LIFETIME_SECONDS: int(60, 365 * 86400).default(30 * 86400),
  REFRESH_TOKEN_IDLE_SECONDS: int(60, 365 * 86400).default(7 * 86400),
  REFRESH_TOKEN_RETRY_SECONDS: int(0, 3600).default(60),
  SMTP_URL: z
    .string()
    .regex(/^smtps?:\/\/[^\s]+$/, 'must be an smtp:// or smtps:// URL (e.g. smtps://user:pass@mail.example.com:465)')
    .refine((u) => URL.canParse(u), 'must be an smtp:// or smtps:// URL (e.g. smtps://user:pass@mail.example.com:465)')
    .optional(),
  // eslint-disable-next-line no-control-regex
  MAIL_FROM: z.string().max(320, 'must be at most 320 characters').regex(/^[^\u0000-\u001f\u007f]*@[^\u0000-\u001f\u007f]*$/, 'must be an address like "Gatehouse <no-reply@example.com>", on one line').optional(),
  SIGNUP: z.enum(['off', 'invite', 'open'], { message: 'must be off, invite or open' }).default('off'),
});

/** Every environment variable Gatehouse reads. */
export const ENV_VARIABLES = Object.keys(schema.shape);

export interface Config {
  production: boolean;
  /** undefined means: start the embedded PostgreSQL under dataDir/pg */
  databaseUrl: string | undefined;
  issuer: string;
  port: number;
  host: string;
  cookieSecrets: string[];
  keyEncryptionKey: Buffer;
  workers: number;
  logLevel: (typeof logLevels)[number];
  keyRotationLeadSeconds: number;
  /** undefined: /metrics is open (unset outside production, or METRICS_TOKEN=off) */
  metricsToken: string | undefined;
  /** which X-Forwarded-For entries give the client address (src/http/client-address.ts) */
  trustProxy: TrustProxy;
  /** non-public hosts and ranges that outgoing requests may reach anyway (src/http/outbound.ts) */
  outboundAllowlist: OutboundAllowlist;
  dataDir: string;
  dbPoolSize: number;
  dbStatementTimeoutMs: number;
  requestTimeoutMs: number;
  cleanupIntervalSeconds: number;
  clientSecretRotationGraceSeconds: number;
  login: { maxFailures: number; lockSeconds: number; maxLockSeconds: number; ipMaxFailures: number };
  auditRetentionDays: number;
  /**
   * refresh tokens: absolute lifetime of a rotation chain, how long an unused
   * one lives, and how long a rotated one whose answer was never delivered may
   * be presented once more (0: never; src/oidc/refresh-rotation.ts)
   */
  refreshToken: { lifetimeSeconds: number; idleSeconds: number; retrySeconds: number };
  /**
   * Outgoing mail (src/mail/). `enabled`: invitations, password reset and
   * sign-up can send mail: SMTP_URL is set, or this is not production (then
   * mails are written to DATA_DIR/mail/ as .eml files). In production without
   * SMTP_URL the mail features are off (no "Forgot password?" link,
   * invitations refused) and SIGNUP must stay off.
   */
  mail: { enabled: boolean; smtpUrl: string | undefined; from: string };
  /** self-registration: off, invite (only invited people) or open (with email verification) */
  signup: 'off' | 'invite' | 'open';
}

export type Env = Record<string, string | undefined>;

/** Parses the environment. Throws ConfigError with a one-line message. */
export function loadConfig(env: Env = process.env, opts: { generateSecrets?: boolean } = {}): Config {
  // Empty strings count as unset: `FOO= gatehouse serve` should mean the default.
  const cleaned = Object.fromEntries(Object.entries(env).filter(([, v]) => v !== undefined && v !== ''));
  const parsed = schema.safeParse(cleaned);
  if (!parsed.success) {
    const issue = parsed.error.issues[0]!;
    const name = String(issue.path[0] ?? 'environment');
    throw new ConfigError(`invalid ${name}: ${issue.message}`);
  }
  const e = parsed.data;
  const production = e.NODE_ENV === 'production';
  const issuer = (e.ISSUER ?? `http://localhost:${e.PORT}`).replace(/\/$/, '');
  if (production) {
    const missing = (['DATABASE_URL', 'COOKIE_SECRETS', 'KEY_ENCRYPTION_KEY', 'ISSUER', 'METRICS_TOKEN'] as const).filter((k) => e[k] === undefined);
    if (missing.length > 0) {
      const hint = missing.includes('METRICS_TOKEN') ? ' (METRICS_TOKEN=off leaves /metrics open on purpose)' : '';
      throw new ConfigError(`NODE_ENV=production requires ${missing.join(', ')}${hint}`);
    }
    if (!issuer.startsWith('https://')) throw new ConfigError('invalid ISSUER: must be https:// when NODE_ENV=production');
    refuseWeakSecrets(e);
    if (e.SIGNUP !== 'off' && e.SMTP_URL === undefined) {
      throw new ConfigError(`SIGNUP=${e.SIGNUP} requires SMTP_URL when NODE_ENV=production (sign-up and invitations mail a link)`);
    }
  }
  const dataDir = path.resolve(e.DATA_DIR);
  let cookieSecrets = e.COOKIE_SECRETS;
  let kek = e.KEY_ENCRYPTION_KEY ? Buffer.from(e.KEY_ENCRYPTION_KEY, 'base64') : undefined;
  if (!cookieSecrets || !kek) {
    if (opts.generateSecrets === false) {
      throw new ConfigError(`missing ${!cookieSecrets ? 'COOKIE_SECRETS' : 'KEY_ENCRYPTION_KEY'}`);
    }
    const dev = developmentSecrets(dataDir);
    cookieSecrets ??= [dev.cookieSecret];
    kek ??= Buffer.from(dev.keyEncryptionKey, 'base64');
  }
  return {
    production,
    databaseUrl: e.DATABASE_URL,
    issuer,
    port: e.PORT,
    host: e.HOST ?? (production ? '0.0.0.0' : '127.0.0.1'),
    cookieSecrets,
    keyEncryptionKey: kek,
    workers: e.WORKERS,
    logLevel: e.LOG_LEVEL,
    keyRotationLeadSeconds: e.KEY_ROTATION_LEAD_SECONDS,
    metricsToken: e.METRICS_TOKEN === 'off' ? undefined : e.METRICS_TOKEN,
    trustProxy: e.TRUST_PROXY,
    outboundAllowlist: e.OUTBOUND_ALLOWLIST,
    dataDir,
    dbPoolSize: e.DB_POOL_SIZE,
    dbStatementTimeoutMs: e.DB_STATEMENT_TIMEOUT_MS,
    requestTimeoutMs: e.REQUEST_TIMEOUT_MS,
    cleanupIntervalSeconds: e.CLEANUP_INTERVAL_SECONDS,
    clientSecretRotationGraceSeconds: e.CLIENT_SECRET_ROTATION_GRACE_SECONDS,
    login: {
      maxFailures: e.LOGIN_MAX_FAILURES,
      lockSeconds: e.LOGIN_LOCK_SECONDS,
      maxLockSeconds: e.LOGIN_MAX_LOCK_SECONDS,
      ipMaxFailures: e.LOGIN_IP_MAX_FAILURES,
    },
    auditRetentionDays: e.AUDIT_RETENTION_DAYS,
    refreshToken: {
      lifetimeSeconds: e.REFRESH_TOKEN_LIFETIME_SECONDS,
      idleSeconds: e.REFRESH_TOKEN_IDLE_SECONDS,
      retrySeconds: e.REFRESH_TOKEN_RETRY_SECONDS,
    },
    mail: {
      enabled: e.SMTP_URL !== undefined || !production,
      smtpUrl: e.SMTP_URL,
      from: e.MAIL_FROM ?? `Gatehouse <no-reply@${new URL(issuer).hostname}>`,
    },
    signup: e.SIGNUP,
  };
}

/**
 * NODE_ENV=production: every secret must look random (src/config/secret-strength.ts).
 * The error names the variable (and which of several COOKIE_SECRETS), never the value.
 */
function refuseWeakSecrets(e: z.output<typeof schema>): void {
  const secrets = e.COOKIE_SECRETS ?? [];
  secrets.forEach((secret, i) => {
    const why = secretWeakness(secret);
    if (why) throw new ConfigError(`invalid COOKIE_SECRETS${secrets.length > 1 ? ` (secret ${i + 1} of ${secrets.length})` : ''}: ${why}`);
  });
  if (e.KEY_ENCRYPTION_KEY !== undefined) {
    const why = keyWeakness(e.KEY_ENCRYPTION_KEY, Buffer.from(e.KEY_ENCRYPTION_KEY, 'base64'));
    if (why) throw new ConfigError(`invalid KEY_ENCRYPTION_KEY: ${why}`);
  }
  if (e.METRICS_TOKEN !== undefined && e.METRICS_TOKEN !== 'off') {
    const why = secretWeakness(e.METRICS_TOKEN);
    if (why) throw new ConfigError(`invalid METRICS_TOKEN: ${why.replace('-base64 32', '-hex 32')}`);
  }
}

interface DevSecrets {
  cookieSecret: string;
  keyEncryptionKey: string;
}

/**
 * Development secrets, generated on first use and kept in DATA_DIR/secrets.json
 * (mode 0600) so that restarts keep sessions and can decrypt the signing keys.
 */
function developmentSecrets(dataDir: string): DevSecrets {
  const file = path.join(dataDir, 'secrets.json');
  if (existsSync(file)) {
    try {
      const s = JSON.parse(readFileSync(file, 'utf8')) as Partial<DevSecrets>;
      if (typeof s.cookieSecret === 'string' && typeof s.keyEncryptionKey === 'string') return s as DevSecrets;
    } catch {
      // fall through to the error below
    }
    throw new ConfigError(`${file} is unreadable; restore it or set COOKIE_SECRETS and KEY_ENCRYPTION_KEY`);
  }
  mkdirSync(dataDir, { recursive: true, mode: 0o755 });
  const s: DevSecrets = {
    cookieSecret: randomBytes(32).toString('base64url'),
    keyEncryptionKey: randomBytes(32).toString('base64'),
  };
  // 'wx' fails if another process created it meanwhile; then read theirs.
  try {
    writeFileSync(file, JSON.stringify(s, null, 2) + '\n', { mode: 0o600, flag: 'wx' });
    return s;
  } catch {
    return developmentSecrets(dataDir);
  }
}
