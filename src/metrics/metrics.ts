// Prometheus metrics (prom-client). Labels are bounded on purpose: routes are
// patterns, grant types and errors come from fixed lists, and no client or
// user id is ever a label.
import client from 'prom-client';
import { recentCounts, type LastHour } from './recent.ts';

const GRANT_TYPES = new Set([
  'authorization_code',
  'refresh_token',
  'client_credentials',
  'urn:ietf:params:oauth:grant-type:token-exchange',
  'urn:ietf:params:oauth:grant-type:device_code',
]);
const OAUTH_ERRORS = new Set([
  'invalid_request',
  'invalid_client',
  'invalid_grant',
  'unauthorized_client',
  'unsupported_grant_type',
  'invalid_scope',
  'invalid_target',
  'invalid_dpop_proof',
  'use_dpop_nonce',
  'server_error',
  'temporarily_unavailable',
]);

const grantLabel = (g: unknown) => (typeof g === 'string' && GRANT_TYPES.has(g) ? g : 'other');
const errorLabel = (e: unknown) => (typeof e === 'string' && OAUTH_ERRORS.has(e) ? e : 'other');

export type LoginResult = 'success' | 'failure' | 'locked';

export interface Metrics {
  registry: client.Registry;
  observeRequest(info: { method: string; route: string; status: number; seconds: number }): void;
  tokenIssued(grantType: unknown): void;
  tokenError(grantType: unknown, error: unknown): void;
  login(result: LoginResult): void;
  cleanupRemoved(table: string, rows: number): void;
  observeQuery(seconds: number): void;
  /** gauges read at scrape time */
  setCollectors(c: Collectors): void;
  /** this process's tokens, logins, requests and errors of the last hour, minute by minute */
  lastHour(): LastHour;
}

export interface Collectors {
  pool?: () => { total: number; idle: number; waiting: number };
  /** creation time of the key signing for each algorithm */
  signingKeyCreatedAt?: () => { alg: string; createdAt: Date }[];
  /** number of unexpired sessions (may query; cached by the caller) */
  activeSessions?: () => Promise<number>;
}

export function createMetrics(): Metrics {
  const registry = new client.Registry();
  client.collectDefaultMetrics({ register: registry, prefix: 'gatehouse_' });
  // prom-client names three gauges `…_total`, which `promtool check metrics`
  // refuses (that suffix is for counters). Each is the sum of the gauge of
  // the same name without the suffix (by `type`), which stays.
  for (const name of ['handles', 'requests', 'resources']) registry.removeSingleMetric(`gatehouse_nodejs_active_${name}_total`);
  let collectors: Collectors = {};

  const httpRequests = new client.Counter({
    name: 'gatehouse_http_requests_total',
    help: 'HTTP requests by method, matched route pattern and status code',
    labelNames: ['method', 'route', 'status'] as const,
    registers: [registry],
  });
  const httpDuration = new client.Histogram({
    name: 'gatehouse_http_request_duration_seconds',
    help: 'HTTP request duration by method and matched route pattern',
    labelNames: ['method', 'route'] as const,
    buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5],
    registers: [registry],
  });
  const tokensIssued = new client.Counter({
    name: 'gatehouse_tokens_issued_total',
    help: 'Successful token endpoint responses by grant type',
    labelNames: ['grant_type'] as const,
    registers: [registry],
  });
  const tokenErrors = new client.Counter({
    name: 'gatehouse_token_errors_total',
    help: 'Token endpoint errors by grant type and OAuth error code',
    labelNames: ['grant_type', 'error'] as const,
    registers: [registry],
  });
  const logins = new client.Counter({
    name: 'gatehouse_logins_total',
    help: 'Password login attempts by result (success, failure, locked)',
    labelNames: ['result'] as const,
    registers: [registry],
  });
  for (const r of ['success', 'failure', 'locked']) logins.inc({ result: r }, 0);
  const cleanup = new client.Counter({
    name: 'gatehouse_cleanup_rows_removed_total',
    help: 'Expired rows removed by the cleanup job, by table',
    labelNames: ['table'] as const,
    registers: [registry],
  });
  const queryDuration = new client.Histogram({
    name: 'gatehouse_db_query_duration_seconds',
    help: 'Database query duration',
    buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1, 5],
    registers: [registry],
  });
  new client.Gauge({
    name: 'gatehouse_db_pool_connections',
    help: 'Database pool connections by state (total, idle, waiting requests)',
    labelNames: ['state'] as const,
    registers: [registry],
    collect() {
      const p = collectors.pool?.();
      if (!p) return;
      this.set({ state: 'total' }, p.total);
      this.set({ state: 'idle' }, p.idle);
      this.set({ state: 'waiting' }, p.waiting);
    },
  });
  new client.Gauge({
    name: 'gatehouse_signing_key_age_seconds',
    help: 'Age of the key currently signing, by algorithm',
    labelNames: ['alg'] as const,
    registers: [registry],
    collect() {
      for (const k of collectors.signingKeyCreatedAt?.() ?? []) {
        this.set({ alg: k.alg }, Math.round((Date.now() - k.createdAt.getTime()) / 1000));
      }
    },
  });
  new client.Gauge({
    name: 'gatehouse_active_sessions',
    help: 'Unexpired single sign-on sessions (whole deployment)',
    registers: [registry],
    // Every instance reports the same shared number: aggregate with max, not sum.
    aggregator: 'max',
    async collect() {
      if (!collectors.activeSessions) return;
      try {
        this.set(await collectors.activeSessions());
      } catch {
        // database down: leave the last value
      }
    },
  });

  const recent = recentCounts();
  return {
    registry,
    observeRequest({ method, route, status, seconds }) {
      httpRequests.inc({ method, route, status: String(status) });
      httpDuration.observe({ method, route }, seconds);
      recent.add('requests');
      if (status >= 500) recent.add('serverErrors');
    },
    tokenIssued: (g) => {
      tokensIssued.inc({ grant_type: grantLabel(g) });
      recent.add('tokens');
    },
    tokenError: (g, e) => {
      tokenErrors.inc({ grant_type: grantLabel(g), error: errorLabel(e) });
      recent.add('tokenErrors');
    },
    login: (result) => {
      logins.inc({ result });
      recent.add(result === 'success' ? 'logins' : result === 'locked' ? 'loginsLocked' : 'loginFailures');
    },
    lastHour: () => recent.lastHour(),
    cleanupRemoved: (table, rows) => rows > 0 && cleanup.inc({ table }, rows),
    observeQuery: (s) => queryDuration.observe(s),
    setCollectors(c) {
      collectors = { ...collectors, ...c };
    },
  };
}
