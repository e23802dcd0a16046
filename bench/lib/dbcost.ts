// Database cost of a measured run of a Gatehouse scenario (issue 18):
// statements, explicit transactions, rows written and PostgreSQL CPU time per
// operation.
//
// - From pg_stat_statements when the server has it loaded
//   (shared_preload_libraries) and `CREATE EXTENSION pg_stat_statements`
//   works: calls, rows and total_exec_time of the bench database.
// - Otherwise: statements counted through the pool, in the Gatehouse
//   processes (bench/lib/count-statements.mjs, preloaded by the bench only);
//   rows written from pg_stat_database (tup_inserted + tup_updated +
//   tup_deleted; PostgreSQL publishes these at most once a second per
//   backend, so both ends of a run under load lag alike by ≤ 1 s).
// - PostgreSQL CPU: utime + stime from /proc of the backends serving the bench
//   database (pg_stat_activity), when PostgreSQL runs on this machine.
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import pg from 'pg';

export interface DbCost {
  source: 'pg_stat_statements' | 'pool';
  statementsPerOp: number;
  /** BEGIN … COMMIT blocks per operation (single statements are their own implicit transaction) */
  transactionsPerOp: number;
  rowsWrittenPerOp: number;
  /** CPU of the PostgreSQL backends serving the bench database, ms per operation (undefined: not on this machine) */
  pgCpuMsPerOp?: number;
  /** pg_stat_statements only: server execution time, ms per operation */
  pgExecMsPerOp?: number;
  /** time the Gatehouse processes waited for answers, ms per operation (pool counting only) */
  waitMsPerOp?: number;
}

interface Snapshot {
  statements: number;
  transactions: number;
  waitMs: number;
  rowsWritten: number;
  execMs?: number;
  backendTicks: Map<number, number>;
}

function ticksOf(pid: number): number | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return Number(f[11]) + Number(f[12]);
  } catch {
    return undefined;
  }
}

export class DbCostMeter {
  #client: pg.Client | undefined;
  #pgss = false;
  #dbName: string;

  constructor(
    private readonly databaseUrl: string,
    statementsDir: string | string[] | undefined,
  ) {
    this.#dbName = decodeURIComponent(new URL(databaseUrl).pathname.slice(1));
    this.#dirs = statementsDir === undefined ? [] : Array.isArray(statementsDir) ? statementsDir : [statementsDir];
  }

  #dirs: string[];

  async open(): Promise<void> {
    this.#client = new pg.Client({ connectionString: this.databaseUrl });
    await this.#client.connect();
    try {
      await this.#client.query('CREATE EXTENSION IF NOT EXISTS pg_stat_statements');
      await this.#client.query('SELECT 1 FROM pg_stat_statements LIMIT 1');
      this.#pgss = true;
    } catch {
      this.#pgss = false; // not in shared_preload_libraries: count through the pool
    }
  }

  get source(): DbCost['source'] {
    return this.#pgss ? 'pg_stat_statements' : 'pool';
  }

  #poolCounts(): { statements: number; transactions: number; waitMs: number } {
    const sum = { statements: 0, transactions: 0, waitMs: 0 };
    const files: string[] = [];
    for (const dir of this.#dirs) {
      try {
        files.push(...readdirSync(dir).filter((f) => f.endsWith('.json')).map((f) => path.join(dir, f)));
      } catch {
        /* not written yet */
      }
    }
    for (const f of files) {
      try {
        const c = JSON.parse(readFileSync(f, 'utf8')) as typeof sum;
        sum.statements += c.statements;
        sum.transactions += c.transactions;
        sum.waitMs += c.waitMs;
      } catch {
        /* being written: the next read sees it */
      }
    }
    return sum;
  }

  async snapshot(): Promise<Snapshot> {
    const c = this.#client!;
    // let the preloaded counters write their latest totals
    await new Promise((r) => setTimeout(r, 250));
    const pool = this.#poolCounts();
    const db = await c.query<{ w: string }>(
      'SELECT (tup_inserted + tup_updated + tup_deleted)::text AS w FROM pg_stat_database WHERE datname = current_database()',
    );
    const pids = await c.query<{ pid: number }>('SELECT pid FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()');
    const backendTicks = new Map<number, number>();
    for (const { pid } of pids.rows) {
      const t = ticksOf(pid);
      if (t !== undefined) backendTicks.set(pid, t);
    }
    const snap: Snapshot = { ...pool, rowsWritten: Number(db.rows[0]?.w ?? 0), backendTicks };
    if (this.#pgss) {
      const s = await c.query<{ calls: string; ms: string; tx: string }>(
        `SELECT coalesce(sum(calls), 0)::text AS calls, coalesce(sum(total_exec_time), 0)::text AS ms,
                coalesce(sum(calls) FILTER (WHERE query ~* '^\\s*(begin|start transaction)'), 0)::text AS tx
         FROM pg_stat_statements s JOIN pg_database d ON d.oid = s.dbid WHERE d.datname = $1 AND s.userid = (SELECT usesysid FROM pg_user WHERE usename = current_user)`,
        [this.#dbName],
      );
      snap.statements = Number(s.rows[0]!.calls);
      snap.transactions = Number(s.rows[0]!.tx);
      snap.execMs = Number(s.rows[0]!.ms);
    }
    return snap;
  }

  /** cost per operation between two snapshots; `ops` operations were done in between */
  cost(before: Snapshot, after: Snapshot, ops: number): DbCost | undefined {
    if (ops <= 0) return undefined;
    const per = (x: number) => Math.round((x / ops) * 100) / 100;
    let ticks = 0;
    let local = false;
    for (const [pid, t] of after.backendTicks) {
      local = true;
      ticks += t - (before.backendTicks.get(pid) ?? 0);
    }
    // the meter's own queries (two per snapshot) are not Gatehouse's
    const own = this.#pgss ? 4 : 0;
    return {
      source: this.source,
      statementsPerOp: per(after.statements - before.statements - own),
      transactionsPerOp: per(after.transactions - before.transactions),
      rowsWrittenPerOp: per(after.rowsWritten - before.rowsWritten),
      ...(local && { pgCpuMsPerOp: Math.round(((ticks * 10) / ops) * 1000) / 1000 }),
      ...(after.execMs !== undefined && before.execMs !== undefined && { pgExecMsPerOp: Math.round(((after.execMs - before.execMs) / ops) * 1000) / 1000 }),
      ...(!this.#pgss && { waitMsPerOp: Math.round(((after.waitMs - before.waitMs) / ops) * 1000) / 1000 }),
    };
  }

  async close(): Promise<void> {
    await this.#client?.end().catch(() => {});
  }
}
