// Finds the database Gatehouse runs on: DATABASE_URL, or the embedded
// PostgreSQL under DATA_DIR/pg (started here, or shared with the Gatehouse
// process that already runs it). Also checks it is reachable, with a clear error.
import pg from 'pg';
import type { Config } from '../config/config.ts';
import { startEmbeddedDatabase } from './embedded.ts';

export class DatabaseUnavailableError extends Error {}

export interface DatabaseLocation {
  url: string;
  embedded: boolean;
  /** stops the embedded database if this process started it */
  release(): Promise<void>;
}

function describe(url: string): string {
  try {
    const u = new URL(url);
    return `${u.hostname}:${u.port || 5432}${u.pathname}`;
  } catch {
    return 'DATABASE_URL';
  }
}

export async function checkReachable(url: string, timeoutMs = 5_000): Promise<void> {
  const c = new pg.Client({ connectionString: url, connectionTimeoutMillis: timeoutMs });
  c.on('error', () => {});
  try {
    await c.connect();
    await c.query('SELECT 1');
  } catch (err) {
    throw new DatabaseUnavailableError(`cannot reach the database at ${describe(url)}: ${(err as Error).message || 'connection failed'}`);
  } finally {
    await c.end().catch(() => {});
  }
}

export async function locateDatabase(config: Config, log: (line: string) => void = () => {}): Promise<DatabaseLocation> {
  if (config.databaseUrl) {
    await checkReachable(config.databaseUrl);
    return { url: config.databaseUrl, embedded: false, release: async () => {} };
  }
  const db = await startEmbeddedDatabase({ dataDir: config.dataDir, log });
  return { url: db.url, embedded: true, release: () => db.stop() };
}
