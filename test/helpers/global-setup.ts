// Runs once per `vitest run`: finds the PostgreSQL server the tests use
// (TEST_DATABASE_URL, or an embedded one in a temporary directory) and builds
// a migrated template database that each test file clones in milliseconds.
import { chmodSync, mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import pg from 'pg';
import type { TestProject } from 'vitest/node';
import { startEmbeddedDatabase, type EmbeddedDatabase } from '../../src/db/embedded.ts';
import { migrate } from '../../src/db/migrate.ts';
import { ensureConsoleBuilt } from './console-build.ts';

declare module 'vitest' {
  export interface ProvidedContext {
    pgServerUrl: string;
    pgTemplate: string;
  }
}

let embedded: EmbeddedDatabase | undefined;
let tmp: string | undefined;
let serverUrl: string;
let template: string;

export function withDatabase(url: string, db: string): string {
  const u = new URL(url);
  u.pathname = `/${db}`;
  return u.toString();
}

export async function setup(project: TestProject): Promise<void> {
  // the admin console's bundle, which the app serves at /console (test/console/)
  ensureConsoleBuilt();
  if (process.env.TEST_DATABASE_URL) {
    serverUrl = process.env.TEST_DATABASE_URL;
  } else {
    tmp = mkdtempSync(path.join(os.tmpdir(), 'gatehouse-test-'));
    chmodSync(tmp, 0o755); // the postgres OS user must reach it when we run as root
    embedded = await startEmbeddedDatabase({ dataDir: tmp });
    serverUrl = embedded.url;
  }
  template = `gh_template_${process.pid}`;
  const admin = new pg.Client({ connectionString: serverUrl });
  await admin.connect();
  try {
    await admin.query(`DROP DATABASE IF EXISTS ${template} WITH (FORCE)`);
    await admin.query(`CREATE DATABASE ${template}`);
  } finally {
    await admin.end();
  }
  await migrate(withDatabase(serverUrl, template));
  project.provide('pgServerUrl', serverUrl);
  project.provide('pgTemplate', template);
}

export async function teardown(): Promise<void> {
  const admin = new pg.Client({ connectionString: serverUrl });
  await admin.connect().catch(() => {});
  await admin.query(`DROP DATABASE IF EXISTS ${template} WITH (FORCE)`).catch(() => {});
  await admin.end().catch(() => {});
  await embedded?.stop();
  if (tmp) rmSync(tmp, { recursive: true, force: true });
}
