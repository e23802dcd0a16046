// Shared by the apply / export tests: a fresh database, temp files, and a
// snapshot of every row apply could touch (to prove "nothing changed").
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { expect } from 'vitest';
import { openDb, type DbHandle } from '../../src/db/client.ts';
import { cli, type CliResult } from '../helpers/cli.ts';
import { createTestDatabase, type TestDatabase } from '../helpers/db.ts';

export interface PlanJson {
  create: { kind: string; id: string }[];
  update: { kind: string; id: string; changes: string[] }[];
  delete: { kind: string; id: string }[];
  secrets: { client_id: string; client_secret: string }[];
}

export interface Env {
  tdb: TestDatabase;
  h: DbHandle;
  tmp: string;
  run: (...args: string[]) => Promise<CliResult>;
  runStdin: (stdin: string, ...args: string[]) => Promise<CliResult>;
  /** writes `doc` (JSON unless a string is given) to a temp file and returns its path */
  write: (name: string, doc: unknown) => string;
  /** every row of resources, clients, roles, account roles and audit events, as text */
  snapshot: () => Promise<string>;
  close: () => Promise<void>;
}

export async function setupEnv(): Promise<Env> {
  const tdb = await createTestDatabase();
  const h = openDb({ url: tdb.url, poolSize: 2 });
  const tmp = mkdtempSync(path.join(os.tmpdir(), 'gatehouse-declarative-'));
  return {
    tdb,
    h,
    tmp,
    run: (...args) => cli(tdb.url, args),
    runStdin: (stdin, ...args) => cli(tdb.url, args, { stdin }),
    write: (name, doc) => {
      const file = path.join(tmp, name);
      writeFileSync(file, typeof doc === 'string' ? doc : JSON.stringify(doc, null, 2));
      return file;
    },
    snapshot: async () => {
      const p = h.prisma;
      const rows = {
        resources: await p.resource.findMany({ orderBy: { identifier: 'asc' } }),
        clients: await p.client.findMany({ orderBy: { id: 'asc' } }),
        roles: await p.role.findMany({ orderBy: { name: 'asc' } }),
        accountRoles: await p.accountRole.findMany({ orderBy: [{ accountId: 'asc' }, { roleId: 'asc' }] }),
        audit: await p.auditEvent.count(),
      };
      return JSON.stringify(rows, (_k, v: unknown) => (typeof v === 'bigint' ? v.toString() : v));
    },
    close: async () => {
      await h.close();
      await tdb.drop();
      rmSync(tmp, { recursive: true, force: true });
    },
  };
}

/** A failed command: exit code 1 and exactly one line on stderr, nothing on stdout. */
export function expectOneLineError(r: CliResult, ...parts: string[]): void {
  expect(r.stdout).toBe('');
  expect(r.stderr).toMatch(/^gatehouse: [^\n]+\n$/);
  expect(r.code).toBe(1);
  for (const p of parts) expect(r.stderr).toContain(p);
}

export function expectOk(r: CliResult): void {
  expect(r.stderr).toBe('');
  expect(r.code).toBe(0);
}

/** A file describing a small healthcare system; orders-service ↔ orders API is the servedBy cycle. */
export function baseDoc() {
  return {
    resources: [
      { identifier: 'https://orders.example', name: 'Orders API', scopes: ['orders:read', 'orders:write'], servedBy: ['orders-service'] },
      { identifier: 'https://records.example', scopes: ['records:read', 'records:write', 'prescriptions:write'], requireRoles: true, ttl: 600 },
    ],
    clients: [
      {
        id: 'orders-service',
        name: 'Orders service',
        grants: ['client_credentials', 'urn:ietf:params:oauth:grant-type:token-exchange'],
        scopes: ['orders:read'],
        resources: ['https://orders.example'],
      },
      {
        id: 'web',
        name: 'Web app',
        public: true,
        grants: ['authorization_code', 'refresh_token'],
        redirectUris: ['https://app.example/cb'],
        scopes: ['openid', 'records:read'],
        resources: ['https://records.example'],
        requireDpop: true,
      },
    ],
    roles: [
      { name: 'nurse', resource: 'https://records.example', scopes: ['records:read'] },
      { name: 'doctor', resource: 'https://records.example', scopes: ['records:read', 'prescriptions:write'] },
    ],
  };
}
