// Builds the real Gatehouse app on a fresh test database, for supertest.
import supertest from 'supertest';
import { buildApp, type Gatehouse } from '../../src/app.ts';
import { loadConfig, type Config, type Env } from '../../src/config/config.ts';
import { createLogger, type Logger } from '../../src/logging/logger.ts';
import { createTestDatabase, type TestDatabase } from './db.ts';
import { testEnv } from './env.ts';

export interface TestApp {
  gatehouse: Gatehouse;
  config: Config;
  database: TestDatabase;
  request: ReturnType<typeof supertest>;
  close(): Promise<void>;
}

export async function createTestApp(opts: { env?: Env; database?: TestDatabase; logger?: Logger } = {}): Promise<TestApp> {
  const database = opts.database ?? (await createTestDatabase());
  const config = loadConfig(testEnv(database.url, opts.env));
  const gatehouse = await buildApp(config, { databaseUrl: database.url, logger: opts.logger ?? createLogger('silent'), cleanup: false });
  const request = supertest(gatehouse.app.callback());
  return {
    gatehouse,
    config,
    database,
    request,
    async close() {
      await gatehouse.close();
      if (!opts.database) await database.drop();
    },
  };
}
