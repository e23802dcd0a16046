// One Prisma client per process, on a pg pool, with bounded timeouts so a
// slow or missing database fails requests fast instead of hanging them.
import { PrismaPg } from '@prisma/adapter-pg';
import pg from 'pg';
import { PrismaClient } from '../generated/prisma/client.ts';

export type Db = PrismaClient;
export { Prisma } from '../generated/prisma/client.ts';

export interface DbOptions {
  url: string;
  poolSize?: number;
  statementTimeoutMs?: number;
  connectTimeoutMs?: number;
  /** called with each query's duration in seconds (metrics) */
  onQuery?: (seconds: number) => void;
  /** PostgreSQL application_name of every connection (src/db/instance.ts) */
  applicationName?: string;
}

/**
 * How much longer than the statement timeout a query may wait for its answer
 * before the client gives up on the connection. The server enforces the
 * statement timeout; this covers a network (or a server) that does not
 * answer at all, which would otherwise leave a request and a pool slot
 * waiting for hours (TCP's own timeouts).
 */
export const QUERY_TIMEOUT_MARGIN_MS = 1_000;

const READ_TIMEOUT = 'Query read timeout'; // pg's message when query_timeout fires

/**
 * The pg Client class of the pool: reports each query's duration (when asked),
 * and closes its connection when a query got no answer within query_timeout,
 * so that the pool never hands out a connection still waiting for an old
 * answer (pg only gives up on the query, not on the connection).
 */
function poolClient(onQuery: ((seconds: number) => void) | undefined): typeof pg.Client {
  return class PoolClient extends pg.Client {
    // pg's query() has many overloads; the adapter uses the promise form (timed),
    // the pool's own query() (readiness probe) the callback form (not timed).
    // eslint-disable-next-line @typescript-eslint/no-explicit-any
    override query(...args: any[]): any {
      const unanswered = (err: unknown) => {
        if (err instanceof Error && err.message === READ_TIMEOUT) this.connection.stream.destroy();
      };
      const last = args[args.length - 1];
      if (typeof last === 'function') {
        const callback = last as (err: unknown, ...rest: unknown[]) => void;
        args[args.length - 1] = (err: unknown, ...rest: unknown[]) => {
          unanswered(err);
          callback(err, ...rest);
        };
        return (super.query as (...a: unknown[]) => unknown)(...args);
      }
      const start = process.hrtime.bigint();
      const out = (super.query as (...a: unknown[]) => Promise<unknown>)(...args);
      const done = () => onQuery?.(Number(process.hrtime.bigint() - start) / 1e9);
      out.then(done, (err: unknown) => {
        done();
        unanswered(err);
      });
      return out;
    }
  };
}

export interface DbHandle {
  prisma: PrismaClient;
  pool: pg.Pool;
  close(): Promise<void>;
}

export function openDb(opts: DbOptions): DbHandle {
  const statementTimeoutMs = opts.statementTimeoutMs ?? 10_000;
  const pool = new pg.Pool({
    connectionString: opts.url,
    max: opts.poolSize ?? 10,
    connectionTimeoutMillis: opts.connectTimeoutMs ?? 5_000,
    statement_timeout: statementTimeoutMs,
    query_timeout: statementTimeoutMs + QUERY_TIMEOUT_MARGIN_MS,
    keepAlive: true,
    idleTimeoutMillis: 30_000,
    Client: poolClient(opts.onQuery),
    ...(opts.applicationName ? { application_name: opts.applicationName } : {}),
  });
  // An idle client that loses its connection emits 'error' on the pool; without
  // a listener that would crash the process. The next query reconnects.
  pool.on('error', () => {});
  const prisma = new PrismaClient({ adapter: new PrismaPg(pool) });
  let closed = false;
  return {
    prisma,
    pool,
    async close() {
      if (closed) return;
      closed = true;
      await prisma.$disconnect().catch(() => {});
      await pool.end().catch(() => {});
    },
  };
}
