// Counts the SQL statements one Gatehouse instance sends, through its own pg
// pool (Prisma runs on the same pool): every query of a client that belongs
// to that pool, BEGIN and COMMIT included. For statement-count tests of the
// hot paths (refresh rotation, introspection, userinfo).
import pg from 'pg';

export interface StatementLog {
  /** the text of every statement sent while recording, in order */
  readonly statements: string[];
  /** statements other than BEGIN / COMMIT / ROLLBACK */
  readonly data: string[];
  /** transactions begun while recording */
  readonly transactions: number;
  /** runs fn while recording (clearing what was recorded before) and returns its result */
  during<T>(fn: () => Promise<T>): Promise<T>;
  /** stops counting (restores pg's query) */
  stop(): void;
}

const TX_CONTROL = /^\s*(BEGIN|START TRANSACTION|COMMIT|ROLLBACK|END)\b/i;

function textOf(arg: unknown): string {
  if (typeof arg === 'string') return arg;
  if (arg && typeof arg === 'object' && typeof (arg as { text?: unknown }).text === 'string') return (arg as { text: string }).text;
  return String(arg);
}

export function recordStatements(pool: pg.Pool): StatementLog {
  const proto = pg.Client.prototype as unknown as { query: (...args: unknown[]) => unknown };
  const original = proto.query;
  const clients = (pool as unknown as { _clients: unknown[] })._clients;
  let recording = false;
  const statements: string[] = [];
  proto.query = function (this: unknown, ...args: unknown[]) {
    if (recording && clients.includes(this)) statements.push(textOf(args[0]).replace(/\s+/g, ' ').trim());
    return original.apply(this, args);
  };
  return {
    statements,
    get data() {
      return statements.filter((s) => !TX_CONTROL.test(s));
    },
    get transactions() {
      return statements.filter((s) => /^\s*(BEGIN|START TRANSACTION)\b/i.test(s)).length;
    },
    async during(fn) {
      statements.length = 0;
      recording = true;
      try {
        return await fn();
      } finally {
        recording = false;
      }
    },
    stop() {
      proto.query = original;
    },
  };
}
