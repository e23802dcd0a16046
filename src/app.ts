// Composition root: builds the whole Gatehouse HTTP application from a
// Config and a database URL. Each domain exports plain functions; this file
// wires them together and owns the background jobs of one instance.
import Koa from 'koa';
import type Provider from 'oidc-provider';
import type { Config } from './config/config.ts';
import { auditLoginEvent, pruneAuditEvents, recordAudit } from './audit/audit.ts';
import { createMetrics, type Metrics } from './metrics/metrics.ts';
import { metricsRoute } from './metrics/routes.ts';
import { listenForChanges, type ChangeFeed } from './db/changes.ts';
import { startCleanupJob, type CleanupJob, type CleanupStep } from './db/cleanup.ts';
import { openDb, QUERY_TIMEOUT_MARGIN_MS, type Db, type DbHandle } from './db/client.ts';
import { applicationName, newInstanceId } from './db/instance.ts';
import { noteOAuthError, OAUTH_ERROR_EVENTS, type RequestObserver } from './http/access-log.ts';
import { pinClientAddress } from './http/client-address.ts';
import { edge } from './http/edge.ts';
import { answerOutage, markDatabaseUnavailable } from './http/errors.ts';
import { consoleRoutes } from './http/console.ts';
import { healthRoutes } from './http/health.ts';
import { pinToIssuer } from './http/issuer.ts';
import { routeGroups } from './http/routes.ts';
import { ensureSigningKeys, listSigningKeys, loadKeyring, pruneRetiredKeys, type Keyring } from './keys/index.ts';
import { createLogger, type Logger } from './logging/logger.ts';
import { createAccountDirectory } from './accounts/cache.ts';
import { pruneThrottles } from './accounts/throttle.ts';
import { pruneLinks } from './accounts/links.ts';
import { accountRoutes } from './account/routes.ts';
import { accountClientRecord } from './clients/builtin.ts';
import { createClientRegistry, type ClientRegistry } from './clients/registry.ts';
import { createResourceCatalog, type ResourceCatalog } from './resources/cache.ts';
import { ensureBuiltInResources } from './resources/store.ts';
import { ensureConsoleClient } from './clients/console.ts';
import { createAdapterFactory } from './oidc/adapter.ts';
import { clientFinder, clientPatches } from './oidc/clients.ts';
import { installDpopErrors } from './oidc/dpop.ts';
import { installDevicePolling } from './oidc/device.ts';
import { resourceIndicators } from './oidc/resource-indicators.ts';
import { preciseErrorCode, preciseTokenErrors } from './oidc/token-errors.ts';
import { jwtAccessTokenPatches, tokenPolicies } from './oidc/introspection.ts';
import { exchangeTokenClaims, registerTokenExchange } from './oidc/token-exchange.ts';
import { createRevocationList, type RevocationList } from './oidc/revocations.ts';
import {
  installInteractionListeners,
  interactionProviderHooks,
  interactionProviderPatches,
  interactionRoutes,
  deviceRoutes,
  type InteractionDeps,
} from './interactions/index.ts';
import { pruneExpiredPayloads, pruneExpiredRevocations } from './oidc/cleanup.ts';
import { pruneWebauthnChallenges } from './accounts/passkeys.ts';
import { listenForSessionActivity, pruneSessionActivity } from './oidc/session-activity.ts';
import { mountProvider, providerHolder } from './oidc/mount.ts';
import { backchannelSender } from './oidc/sessions.ts';
import { sharedReplayStore } from './oidc/replay.ts';
import { buildProvider } from './oidc/provider.ts';
import { adminRoutes } from './admin/index.ts';
import { createMailer, type Mailer } from './mail/mailer.ts';
import { lifecycleRoutes } from './lifecycle/routes.ts';
import { installPolicyGuard } from './access/enforce.ts';

export interface AppOptions {
  databaseUrl: string;
  logger?: Logger;
  /** run the expired-row cleanup job (default true) */
  cleanup?: boolean;
  observeRequest?: RequestObserver;
  /** metrics registry (created here when not given) */
  metrics?: Metrics;
  /** with several workers: the metrics of all of them (src/server.ts) */
  aggregateMetrics?: () => Promise<string>;
}

export interface Gatehouse {
  app: Koa;
  config: Config;
  db: DbHandle;
  logger: Logger;
  feed: ChangeFeed;
  metrics: Metrics;
  clients: ClientRegistry;
  resources: ResourceCatalog;
  revocations: RevocationList;
  /** outgoing mail (src/mail/): tests wait on mailer.idle() for mails sent out of the request path */
  mailer: Mailer;
  provider(): Provider;
  /** reloads signing keys now (also happens on change notifications and on schedule) */
  reloadKeys(): Promise<void>;
  /** stop answering /readyz with 200 (first step of a graceful shutdown) */
  drain(): void;
  close(): Promise<void>;
}

/**
 * What the expired-row cleanup job deletes, each step its own domain's, in
 * this order. The names are the keys of the job's result and log line and the
 * `table` label of gatehouse_cleanup_rows_removed_total.
 */
export function cleanupSteps(config: Pick<Config, 'login' | 'auditRetentionDays'>) {
  return [
    { name: 'oidcPayloads', batch: pruneExpiredPayloads },
    { name: 'revokedTokens', batch: pruneExpiredRevocations },
    { name: 'loginThrottles', batch: (db: Db, n: number) => pruneThrottles(db, n, config.login) },
    { name: 'signingKeys', batch: pruneRetiredKeys },
    { name: 'webauthnChallenges', batch: pruneWebauthnChallenges },
    { name: 'sessionActivity', batch: pruneSessionActivity },
    // past AUDIT_RETENTION_DAYS
    { name: 'auditEvents', batch: (db: Db, n: number) => pruneAuditEvents(db, n, config.auditRetentionDays) },
    // single-use links (src/accounts/links.ts) a day after they expired
    { name: 'actionTokens', batch: pruneLinks },
  ] as const satisfies readonly CleanupStep[];
}

/** Memoises an async value for `ms` (scrape-time gauges that query the database). */
function cachedFor<T>(ms: number, load: () => Promise<T>): () => Promise<T> {
  let at = 0;
  let value: Promise<T> | undefined;
  return () => {
    if (!value || Date.now() - at > ms) {
      at = Date.now();
      value = load().catch((err: unknown) => {
        value = undefined;
        throw err;
      });
    }
    return value;
  };
}

export async function buildApp(config: Config, opts: AppOptions): Promise<Gatehouse> {
  // every registry write checks the stored access policies (src/access/enforce.ts, src/kernel/guard.ts)
  installPolicyGuard();
  const logger = opts.logger ?? createLogger(config.logLevel);
  const metrics = opts.metrics ?? createMetrics();
  // every connection of this instance carries its id (src/db/instance.ts)
  const instanceId = newInstanceId();
  const db = openDb({
    url: opts.databaseUrl,
    poolSize: config.dbPoolSize,
    statementTimeoutMs: config.dbStatementTimeoutMs,
    onQuery: metrics.observeQuery,
    applicationName: applicationName(instanceId),
  });
  const feed = listenForChanges(opts.databaseUrl, {
    applicationName: applicationName(instanceId),
    // the listening connection answers its heartbeat as fast as any query must
    heartbeatTimeoutMs: config.dbStatementTimeoutMs + QUERY_TIMEOUT_MARGIN_MS,
    onError: (err) => logger.warn({ err: { message: err.message } }, 'change feed connection lost; reconnecting'),
  });
  const mailer = createMailer(config, logger);
  // closed last of all (closers run in reverse): queued mails still go out during shutdown
  const closers: (() => Promise<void> | void)[] = [() => mailer.close(), () => feed.close(), () => db.close()];
  try {
    await ensureSigningKeys(db.prisma, config.keyEncryptionKey);
    await ensureBuiltInResources(db.prisma);
    // the admin console's client (/console), on the admin resource just ensured
    await ensureConsoleClient(db.prisma, config.issuer);
    let keyring: Keyring = await loadKeyring(db.prisma, config.keyEncryptionKey);
    metrics.setCollectors({
      pool: () => ({ total: db.pool.totalCount, idle: db.pool.idleCount, waiting: db.pool.waitingCount }),
      signingKeyCreatedAt: () => signingKeyAges,
      activeSessions: cachedFor(15_000, () =>
        db.prisma.oidcPayload.count({ where: { model: 'Session', OR: [{ expiresAt: null }, { expiresAt: { gt: new Date() } }] } }),
      ),
    });
    let signingKeyAges: { alg: string; createdAt: Date }[] = [];
    const refreshKeyAges = async () => {
      const keys = await listSigningKeys(db.prisma);
      signingKeyAges = keys.filter((k) => k.status === 'active').map((k) => ({ alg: k.alg, createdAt: k.createdAt }));
    };
    await refreshKeyAges();

    const clients = createClientRegistry(db.prisma, feed, { builtIns: [accountClientRecord(config.issuer)] });
    const resources = createResourceCatalog(db.prisma, feed);
    const accounts = createAccountDirectory(db.prisma, feed);
    closers.push(
      () => clients.close(),
      () => resources.close(),
      () => accounts.close(),
    );
    const Adapter = createAdapterFactory(db, { clientFinder: clientFinder(clients), instanceId });
    const revocations = await createRevocationList(db.prisma, feed);
    closers.push(() => revocations.close());
    const domainDeps = { db: db.prisma, pool: db.pool, clients, resources, revocations, accounts };
    // eslint-disable-next-line prefer-const -- assigned once the holder exists
    let holder: ReturnType<typeof providerHolder>;
    const interactionDeps: InteractionDeps = {
      config,
      db: db.prisma,
      logger,
      clients,
      resources,
      accounts,
      provider: () => holder.current,
      onLoginEvent: (e) => {
        metrics.login(e.type === 'login.success' ? 'success' : e.type === 'login.locked' ? 'locked' : 'failure');
        return auditLoginEvent(db.prisma, e);
      },
      onConsentEvent: (e) =>
        recordAudit(db.prisma, {
          action: e.type,
          actor: e.accountId ? { type: 'user', id: e.accountId } : { type: 'anonymous' },
          target: { type: 'client', id: e.clientId },
          requestId: e.requestId,
          ip: e.ip,
          details: { scope: e.scope, automatic: e.automatic },
        }),
    };

    const interactionHooks = interactionProviderHooks(interactionDeps);
    const makeProvider = (ring: Keyring) => {
      const p = buildProvider({
        config,
        logger,
        jwks: ring.jwks,
        adapter: Adapter,
        resourceIndicators: resourceIndicators(clients, resources),
        ...tokenPolicies(domainDeps),
        ...interactionHooks,
        // a person's roles (requireRoles APIs), and an exchange's act (and roles)
        extraTokenClaims: async (ctx, token) => ({ ...(await interactionHooks.extraTokenClaims?.(ctx, token)), ...exchangeTokenClaims(token) }),
        // every oidc-provider method Gatehouse replaces, installed by src/oidc/seam.ts in its order
        patches: (provider) => [
          ...clientPatches(clients),
          ...jwtAccessTokenPatches(provider, { ...domainDeps, publicJwks: ring.publicJwks }),
          ...interactionProviderPatches(interactionDeps),
        ],
      });
      registerTokenExchange(p, domainDeps);
      installDpopErrors(p);
      installDevicePolling(p, db.pool);
      installInteractionListeners(p, interactionDeps);
      listenForSessionActivity(p, db.prisma, logger);
      // Token issuance is counted, not written row by row (hot path). Registered
      // last: earlier grant.error listeners refine some error codes (DPoP).
      p.on('grant.success', (ctx) => metrics.tokenIssued(ctx.oidc.params?.grant_type));
      p.on('grant.error', (ctx, err) => {
        const { error, error_description } = err as { error?: unknown; error_description?: unknown };
        // counted as the client is answered (token-errors.ts rewrites some invalid_request)
        metrics.tokenError(ctx.oidc.params?.grant_type, preciseErrorCode(ctx, error, error_description));
      });
      // the access log names the error of a refused request, HTML answers included
      const events: NodeJS.EventEmitter = p; // (one listener signature for events typed one by one)
      for (const event of OAUTH_ERROR_EVENTS) events.on(event, noteOAuthError);
      // RP-initiated logout (the session is still loaded when this fires).
      p.on('end_session.success', (ctx) => {
        const accountId = ctx.oidc.session?.accountId;
        void recordAudit(db.prisma, {
          action: 'logout',
          actor: accountId ? { type: 'user', id: accountId } : { type: 'anonymous' },
          target: { type: 'user', id: accountId ?? null },
          requestId: typeof ctx.state.requestId === 'string' ? ctx.state.requestId : null,
          ip: ctx.ip,
          details: { client: ctx.oidc.client?.clientId ?? null },
        }).catch((err: Error) => logger.warn({ err: { message: err.message } }, 'audit write failed'));
      });
      p.on('server_error', (ctx, err) => {
        markDatabaseUnavailable(ctx, err);
        logger.error({ reqId: ctx.state.requestId, err: { name: err.name, message: err.message } }, 'oidc server error');
      });
      return p;
    };
    holder = providerHolder(makeProvider(keyring));

    // Keys: reload on a change notification from any instance, and when a
    // pending key activates or a retired one stops being published.
    let keyTimer: NodeJS.Timeout | undefined;
    const scheduleKeyReload = () => {
      clearTimeout(keyTimer);
      if (!keyring.nextChangeAt) return;
      const ms = Math.max(0, keyring.nextChangeAt.getTime() - Date.now()) + 50;
      keyTimer = setTimeout(() => void reloadKeys().catch(() => {}), Math.min(ms, 2 ** 31 - 1));
      keyTimer.unref();
    };
    const reloadKeys = async () => {
      try {
        keyring = await loadKeyring(db.prisma, config.keyEncryptionKey);
        holder.swap(makeProvider(keyring));
        await refreshKeyAges();
      } catch (err) {
        logger.error({ err: { message: (err as Error).message } }, 'signing key reload failed; keeping the current keys');
        throw err;
      } finally {
        scheduleKeyReload();
      }
    };
    scheduleKeyReload();
    const unsubscribeKeys = feed.subscribe('key', () => void reloadKeys().catch(() => {}));
    closers.push(() => {
      unsubscribeKeys();
      clearTimeout(keyTimer);
    });

    let cleanup: CleanupJob | undefined;
    if (opts.cleanup !== false) {
      cleanup = startCleanupJob(db.prisma, cleanupSteps(config), {
        intervalSeconds: config.cleanupIntervalSeconds,
        logger,
        onResult: (r) => {
          for (const [table, rows] of Object.entries(r)) metrics.cleanupRemoved(table, rows);
        },
      });
      closers.push(() => cleanup?.stop());
    }

    let draining = false;
    // oidc-provider runs inside this app and signs its cookies with ctx.cookies: same keys.
    const app = new Koa({ keys: config.cookieSecrets });
    app.silent = true; // errors are answered and logged by the edge middleware (src/http/edge.ts)
    pinToIssuer(app, config.issuer);
    pinClientAddress(app, config.trustProxy);
    app.use(
      edge({
        logger,
        hsts: config.issuer.startsWith('https://'),
        deadlineMs: config.requestTimeoutMs,
        observe: (info) => {
          metrics.observeRequest(info);
          opts.observeRequest?.(info);
        },
      }),
    );
    app.use(
      routeGroups([
        healthRoutes(db.pool, { isDraining: () => draining }),
        metricsRoute(metrics, { token: config.metricsToken, aggregate: opts.aggregateMetrics }),
        interactionRoutes(interactionDeps),
        lifecycleRoutes({ db: db.prisma, config, logger, mailer, clients, backchannel: backchannelSender(() => holder.current) }),
        deviceRoutes(interactionDeps),
        consoleRoutes({ issuer: config.issuer }),
        accountRoutes({ config, db: db.prisma, logger, clients, mailer, provider: () => holder.current, backchannel: backchannelSender(() => holder.current) }),
        adminRoutes({
          db: db.prisma,
          config,
          logger,
          keyring: () => keyring,
          clients,
          resources,
          revocations,
          provider: () => holder.current,
          reloadKeys,
          backchannel: backchannelSender(() => holder.current),
          dpopReplay: sharedReplayStore(Adapter, 'admin-dpop'),
          mailer,
          lastHour: () => metrics.lastHour(),
        }),
      ]),
    );
    // answer rewrites in order: a database outage first, then the precise token errors
    app.use(mountProvider(holder, config.issuer, [answerOutage, preciseTokenErrors(new URL(config.issuer).pathname)]));

    return {
      app,
      config,
      db,
      logger,
      feed,
      metrics,
      clients,
      resources,
      revocations,
      mailer,
      provider: () => holder.current,
      reloadKeys,
      drain() {
        draining = true;
      },
      async close() {
        for (const c of closers.reverse()) await c();
      },
    };
  } catch (err) {
    for (const c of closers.reverse()) await Promise.resolve(c()).catch(() => {});
    throw err;
  }
}
