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
}

/** A pg Client class that reports each query's duration. */
function timedClient(onQuery: (seconds: number) => void): typeof pg.Client {
  return class TimedClient extends pg.Client {
    // pg's query() has many overloads; only the promise form is used by the adapter,
    // the callback form is passed through untimed.
    // eslint-disable-next-line @typescript-eslint/no-explicit-any
    override query(...args: any[]): any {
      const last = args[args.length - 1];
      if (typeof last === 'function') return (super.query as (...a: unknown[]) => unknown)(...args);
      const start = process.hrtime.bigint();
      const out = (super.query as (...a: unknown[]) => Promise<unknown>)(...args);
      const done = () => onQuery(Number(process.hrtime.bigint() - start) / 1e9);
      out.then(done, done);
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
  const pool = new pg.Pool({
    connectionString: opts.url,
    max: opts.poolSize ?? 10,
    connectionTimeoutMillis: opts.connectTimeoutMs ?? 5_000,
    statement_timeout: opts.statementTimeoutMs ?? 10_000,
    idleTimeoutMillis: 30_000,
    ...(opts.onQuery ? { Client: timedClient(opts.onQuery) } : {}),
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
