// Cross-instance change notifications over PostgreSQL LISTEN/NOTIFY.
// A write that changes cached data (a client, a resource, a signing key)
// calls `publishChange` in the same transaction; every instance's listener
// receives it on commit and drops its cached copy. When the listening
// connection drops, every subscriber is told to drop everything ('*'),
// because notifications sent meanwhile are lost.
//
// A connection can also die silently (a failed-over server, a firewall that
// forgot it): nothing errors, notifications just stop. A heartbeat query
// every few seconds finds that out and reconnects.
import pg from 'pg';
import type { PrismaClient } from '../generated/prisma/client.ts';

export const CHANGES_CHANNEL = 'gatehouse_changes';

export type ChangeKind = 'client' | 'resource' | 'key' | 'account' | 'role' | 'revocation' | 'idp';

export interface Change {
  kind: ChangeKind;
  /** the changed entity's id, or '*' for "anything may have changed" */
  id: string;
}

type Listener = (change: Change) => void;

/** Anything with Prisma's $executeRaw: the client or a transaction. */
type Executor = Pick<PrismaClient, '$executeRaw'>;

export async function publishChange(db: Executor, kind: ChangeKind, id: string): Promise<void> {
  const payload = JSON.stringify({ kind, id } satisfies Change);
  await db.$executeRaw`SELECT pg_notify(${CHANGES_CHANNEL}, ${payload})`;
}

export interface ChangeFeed {
  subscribe(kind: ChangeKind, fn: (id: string) => void): () => void;
  /** resolves once LISTEN is active (first connection) */
  ready: Promise<void>;
  close(): Promise<void>;
}

export interface ChangeFeedOptions {
  onError?: (err: Error) => void;
  /** pause between heartbeat queries on the listening connection (default 5 s) */
  heartbeatMs?: number;
  /** a heartbeat not answered within this many ms means the connection is dead (default 5 s) */
  heartbeatTimeoutMs?: number;
  /** PostgreSQL application_name of the listening connection (src/db/instance.ts) */
  applicationName?: string;
}

/** Ends a client without waiting on a peer that may never answer. */
function drop(c: pg.Client): Promise<void> {
  return new Promise<void>((resolve) => {
    const timer = setTimeout(() => {
      c.connection.stream.destroy();
      resolve();
    }, 1_000);
    timer.unref();
    c.end()
      .catch(() => {})
      .finally(() => {
        clearTimeout(timer);
        resolve();
      });
  });
}

export function listenForChanges(databaseUrl: string, opts: ChangeFeedOptions = {}): ChangeFeed {
  const heartbeatMs = opts.heartbeatMs ?? 5_000;
  const heartbeatTimeoutMs = opts.heartbeatTimeoutMs ?? 5_000;
  const listeners = new Set<Listener>();
  let client: pg.Client | undefined;
  let closed = false;
  let retry: NodeJS.Timeout | undefined;
  let heartbeat: NodeJS.Timeout | undefined;
  let delay = 250;
  let resolveReady!: () => void;
  const ready = new Promise<void>((r) => (resolveReady = r));

  const emit = (change: Change) => {
    for (const l of listeners) {
      try {
        l(change);
      } catch (err) {
        opts.onError?.(err as Error);
      }
    }
  };

  const connect = async () => {
    if (closed) return;
    const c = new pg.Client({
      connectionString: databaseUrl,
      connectionTimeoutMillis: 5_000,
      keepAlive: true,
      query_timeout: heartbeatTimeoutMs,
      ...(opts.applicationName ? { application_name: opts.applicationName } : {}),
    });
    c.on('notification', (msg) => {
      if (msg.channel !== CHANGES_CHANNEL || !msg.payload) return;
      try {
        const change = JSON.parse(msg.payload) as Change;
        if (typeof change.kind === 'string' && typeof change.id === 'string') emit(change);
      } catch {
        // not ours
      }
    });
    const lost = (err?: Error) => {
      if (client !== c) return;
      client = undefined;
      clearInterval(heartbeat);
      if (err) opts.onError?.(err);
      void drop(c);
      schedule();
    };
    c.on('error', lost);
    c.on('end', () => lost());
    try {
      await c.connect();
      await c.query(`LISTEN ${CHANGES_CHANNEL}`);
      if (closed) {
        await c.end();
        return;
      }
      const reconnected = delay !== 250 || client === undefined;
      client = c;
      delay = 250;
      clearInterval(heartbeat);
      let beating = false;
      heartbeat = setInterval(() => {
        if (beating || client !== c) return;
        beating = true;
        c.query('SELECT 1')
          .catch((err: Error) => lost(new Error(`change feed connection did not answer: ${err.message}`)))
          .finally(() => (beating = false));
      }, heartbeatMs);
      heartbeat.unref();
      resolveReady();
      // Anything could have changed while we were not listening.
      if (reconnected) for (const kind of ['client', 'resource', 'key', 'account', 'role', 'revocation'] as const) emit({ kind, id: '*' });
    } catch (err) {
      opts.onError?.(err as Error);
      void drop(c);
      schedule();
    }
  };

  const schedule = () => {
    if (closed || retry) return;
    retry = setTimeout(() => {
      retry = undefined;
      void connect();
    }, delay);
    retry.unref();
    delay = Math.min(delay * 2, 5_000);
  };

  void connect();

  return {
    ready,
    subscribe(kind, fn) {
      const l: Listener = (ch) => {
        if (ch.kind === kind) fn(ch.id);
      };
      listeners.add(l);
      return () => listeners.delete(l);
    },
    async close() {
      closed = true;
      if (retry) clearTimeout(retry);
      clearInterval(heartbeat);
      resolveReady();
      const c = client;
      client = undefined;
      if (c) await drop(c);
    },
  };
}
