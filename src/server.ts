// `gatehouse serve`: locate the database (start the embedded one if needed),
// apply migrations, then serve HTTP — in this process, or in WORKERS
// node:cluster workers that share nothing but the database. SIGTERM/SIGINT
// drain in-flight requests, stop every worker and the embedded database.
import cluster from 'node:cluster';
import http from 'node:http';
import type { Socket } from 'node:net';
import v8 from 'node:v8';
import type { Config } from './config/config.ts';
import { buildApp, type Gatehouse } from './app.ts';
import { locateDatabase } from './db/database.ts';
import { migrate } from './db/migrate.ts';
import { createLogger, type Logger } from './logging/logger.ts';
import { clusterMetricsForWorker, serveClusterMetrics } from './metrics/cluster.ts';
import { createMetrics } from './metrics/metrics.ts';

const WORKER_DB_ENV = 'GATEHOUSE_WORKER_DATABASE_URL';
const SHUTDOWN_GRACE_MS = 25_000;

export interface RunningServer {
  gatehouse: Gatehouse;
  server: http.Server;
  url: string;
  /** stop accepting, finish in-flight requests, close the app */
  shutdown(): Promise<void>;
}

/** Starts one HTTP server on an already migrated database. */
export async function startHttpServer(config: Config, databaseUrl: string, logger: Logger): Promise<RunningServer> {
  const metrics = createMetrics();
  const aggregateMetrics = cluster.isWorker ? clusterMetricsForWorker(metrics) : undefined;
  const gatehouse = await buildApp(config, { databaseUrl, logger, metrics, aggregateMetrics });
  const handle = gatehouse.app.callback();
  // Once shutting down, every response closes its connection: a keep-alive
  // client then opens a new connection for its next request (refused)
  // instead of keeping this server busy until the grace period runs out.
  let draining = false;
  const unanswered = new Set<http.ServerResponse>();
  const server = http.createServer((req, res) => {
    if (draining) {
      res.setHeader('Connection', 'close');
    } else {
      unanswered.add(res);
      res.once('close', () => unanswered.delete(res));
    }
    void handle(req, res);
  });
  server.requestTimeout = config.requestTimeoutMs;
  server.headersTimeout = Math.min(config.requestTimeoutMs, 60_000);
  server.keepAliveTimeout = 5_000;
  const sockets = new Set<Socket>();
  server.on('connection', (s) => {
    sockets.add(s);
    s.once('close', () => sockets.delete(s));
  });
  try {
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(config.port, config.host, () => {
        server.off('error', reject);
        resolve();
      });
    });
  } catch (err) {
    // The app holds a pool, a LISTEN connection and timers: without closing
    // it, a failed listen (port in use) leaves the process hanging.
    await gatehouse.close().catch(() => {});
    throw err;
  }
  const addr = server.address();
  const port = typeof addr === 'object' && addr ? addr.port : config.port;
  let closing: Promise<void> | undefined;
  return {
    gatehouse,
    server,
    url: `http://${config.host === '0.0.0.0' || config.host === '::' ? 'localhost' : config.host.includes(':') ? `[${config.host}]` : config.host}:${port}`,
    shutdown() {
      closing ??= (async () => {
        gatehouse.drain();
        draining = true;
        for (const res of unanswered) if (!res.headersSent) res.setHeader('Connection', 'close');
        // Stop accepting; idle keep-alive sockets close now, busy ones after
        // their response (which says `Connection: close`, see above).
        const closed = new Promise<void>((resolve) => server.close(() => resolve()));
        server.closeIdleConnections();
        const timer = setTimeout(() => {
          logger.warn({ open: sockets.size }, 'shutdown grace period over; closing remaining connections');
          server.closeAllConnections();
        }, SHUTDOWN_GRACE_MS);
        timer.unref();
        await closed;
        clearTimeout(timer);
        await gatehouse.close();
      })();
      return closing;
    },
  };
}

/** Where the server accepts connections, said plainly (HOST defaults to loopback outside production). */
function listenAddress(config: Config): string {
  const host = config.host.includes(':') ? `[${config.host}]` : config.host;
  const reach = /^(127\.|\[::1\]$|localhost$)/.test(host) ? 'this machine only; set HOST to change' : 'reachable from the network';
  return `${host}:${config.port} (${reach})`;
}

function banner(config: Config, embedded: boolean): string {
  return [
    `Gatehouse is running. Issuer: ${config.issuer}`,
    `  discovery: ${config.issuer}/.well-known/openid-configuration`,
    `  database:  ${embedded ? `embedded PostgreSQL in ${config.dataDir}/pg` : 'DATABASE_URL'}`,
    `  listening: ${listenAddress(config)}`,
    '',
    'First steps:',
    '  npx gatehouse users create --email you@example.com --password-stdin',
    '  npx gatehouse clients create --name my-service --grant client_credentials --resource <API> --scope "<scopes>"',
    '  (see README.md, "Administering Gatehouse")',
    '',
  ].join('\n');
}

function onSignals(fn: (signal: string) => void): void {
  process.once('SIGTERM', () => fn('SIGTERM'));
  process.once('SIGINT', () => fn('SIGINT'));
}

/**
 * V8 lets the old generation grow to up to 4× the live heap before a full GC
 * when collection is cheap, as it is here (a few ms per full GC): a serving
 * process then sits at 250–300 MB resident for ~40 MB of live objects. At 2×
 * it stays under 200 MB (bench: BENCH_SOAK=300, docs/operations.md "Memory").
 * 1.5× saved no memory that the bench could see but ran a full GC about every
 * 0.85 s under load, each pausing all requests in flight for 3–15 ms: p99 29
 * against 25 ms at 2× (interleaved runs, client_credentials RS256).
 * The flag is read at each heap-limit computation, so setting it at start-up,
 * before the app allocates, takes effect.
 */
export const HEAP_GROWING_PERCENT = 100;

/** Entry point of `gatehouse serve`. Resolves with the exit code. */
export async function serve(config: Config): Promise<number> {
  v8.setFlagsFromString(`--heap-growing-percent=${HEAP_GROWING_PERCENT}`);
  const logger = createLogger(config.logLevel);
  if (cluster.isWorker) return runWorker(config, logger);

  const location = await locateDatabase(config, (line) => logger.info(line));
  try {
    const result = await migrate(location.url);
    if (result.applied.length > 0) logger.info({ applied: result.applied }, 'migrations applied');
  } catch (err) {
    await location.release();
    throw err;
  }

  if (config.workers <= 1) {
    let running: RunningServer;
    try {
      running = await startHttpServer(config, location.url, logger);
    } catch (err) {
      await location.release();
      throw listenError(err, config);
    }
    logger.info({ issuer: config.issuer, url: running.url }, 'listening');
    return new Promise<number>((resolve) => {
      onSignals(async (signal) => {
        logger.info({ signal }, 'shutting down');
        await running.shutdown().catch((err: Error) => logger.error({ err: { message: err.message } }, 'shutdown error'));
        await location.release().catch(() => {});
        resolve(0);
      });
      // Only once the handlers are in place: whoever reads the banner may signal at once.
      process.stdout.write(banner(config, location.embedded));
    });
  }
  return runPrimary(config, location.url, location.embedded, location.release, logger);
}

function listenError(err: unknown, config: Config): Error {
  const e = err as NodeJS.ErrnoException;
  if (e.code === 'EADDRINUSE') return new Error(`port ${config.port} on ${config.host} is already in use (set PORT)`);
  if (e.code === 'EACCES') return new Error(`not allowed to listen on port ${config.port} (set PORT)`);
  return e;
}

async function runWorker(config: Config, logger: Logger): Promise<number> {
  const url = process.env[WORKER_DB_ENV];
  if (!url) throw new Error('worker started without a database URL');
  const running = await startHttpServer(config, url, logger);
  process.send?.({ type: 'gatehouse:listening' });
  return new Promise<number>((resolve) => {
    const stop = async () => {
      await running.shutdown().catch(() => {});
      resolve(0);
    };
    process.on('message', (msg: unknown) => {
      if ((msg as { type?: string })?.type === 'gatehouse:shutdown') void stop();
    });
    // The primary coordinates shutdown; a signal sent to the whole process
    // group must not kill a worker before its requests finish.
    process.on('SIGTERM', () => {});
    process.on('SIGINT', () => {});
  });
}

async function runPrimary(
  config: Config,
  databaseUrl: string,
  embedded: boolean,
  release: () => Promise<void>,
  logger: Logger,
): Promise<number> {
  let stopping = false;
  let restarts: number[] = [];
  serveClusterMetrics();
  // libuv's pool (JWT signing through WebCrypto, argon2) has 4 threads per
  // process by default: N workers share them out instead of each starting 4.
  const poolSize = process.env.UV_THREADPOOL_SIZE ?? String(Math.max(2, Math.ceil(4 / config.workers)));
  const fork = () => cluster.fork({ [WORKER_DB_ENV]: databaseUrl, UV_THREADPOOL_SIZE: poolSize });

  const firstListening = new Promise<void>((resolve, reject) => {
    let ready = 0;
    for (let i = 0; i < config.workers; i++) {
      const w = fork();
      w.on('message', (m: { type?: string }) => {
        if (m?.type === 'gatehouse:listening' && ++ready === config.workers) resolve();
      });
      w.once('exit', (code) => {
        if (ready < config.workers) reject(new Error(`worker exited during start-up (code ${code})`));
      });
    }
  });
  try {
    await firstListening;
  } catch (err) {
    stopping = true;
    for (const w of Object.values(cluster.workers ?? {})) w?.kill();
    await release();
    throw err;
  }

  cluster.on('exit', (worker, code, signal) => {
    if (stopping) return;
    const now = Date.now();
    restarts = restarts.filter((t) => now - t < 60_000);
    restarts.push(now);
    logger.error({ worker: worker.process.pid, code, signal }, 'worker died; restarting');
    const delay = restarts.length > 5 ? 5_000 : 100;
    setTimeout(() => {
      if (!stopping) fork();
    }, delay).unref();
  });

  logger.info({ issuer: config.issuer, workers: config.workers }, 'listening');
  return new Promise<number>((resolve) => {
    process.nextTick(() => process.stdout.write(banner(config, embedded))); // after the handlers below
    onSignals(async (signal) => {
      stopping = true;
      logger.info({ signal }, 'shutting down workers');
      const workers = Object.values(cluster.workers ?? {}).filter((w) => w !== undefined);
      await Promise.all(
        workers.map(
          (w) =>
            new Promise<void>((done) => {
              if (w.isDead()) return done();
              w.once('exit', () => done());
              w.send({ type: 'gatehouse:shutdown' });
              setTimeout(() => w.kill('SIGKILL'), SHUTDOWN_GRACE_MS + 5_000).unref();
            }),
        ),
      );
      await release().catch(() => {});
      resolve(0);
    });
  });
}
