// Registry fixtures for the security tests: one place that creates people,
// clients and APIs, so the attack tests read as attacks.
import { createTestApp, type TestApp } from '../helpers/app.ts';
import { createTestDatabase, type TestDatabase } from '../helpers/db.ts';
import type { Env } from '../../src/config/config.ts';
import { createClient, type ClientInput } from '../../src/clients/store.ts';
import { createResource, type ResourceInput } from '../../src/resources/store.ts';
import { addRoleToAccount, createRole, type RoleInput } from '../../src/resources/roles.ts';
import { setDisabled } from '../../src/accounts/store.ts';
import { createUser, createWebClient, type TestClient } from '../sso/flow.ts';

export { createUser, createWebClient, type TestClient };

export async function createApi(t: TestApp, input: ResourceInput): Promise<void> {
  await createResource(t.gatehouse.db.prisma, input);
}

export async function createServiceClient(t: TestApp, input: Partial<ClientInput> & { name: string }): Promise<TestClient> {
  const created = await createClient(t.gatehouse.db.prisma, { grants: ['client_credentials'], ...input });
  return { id: created.client.id, ...(created.clientSecret ? { secret: created.clientSecret } : {}) };
}

export async function createRoleFor(t: TestApp, input: RoleInput, accountIds: string[] = []): Promise<void> {
  const db = t.gatehouse.db.prisma;
  await createRole(db, input);
  for (const id of accountIds) await addRoleToAccount(db, id, input.name);
}

/** Two Gatehouse instances (own pools, caches and change feeds) on one fresh database. */
export async function twoApps(env: Env = {}): Promise<{ a: TestApp; b: TestApp; database: TestDatabase; close(): Promise<void> }> {
  const database = await createTestDatabase();
  const a = await createTestApp({ database, env });
  const b = await createTestApp({ database, env });
  return {
    a,
    b,
    database,
    async close() {
      await a.close();
      await b.close();
      await database.drop();
    },
  };
}

/** Disables a person through the accounts domain alone: no sessions are ended (as by a writer that does not know to). */
export async function disableAccountOnly(t: TestApp, accountId: string): Promise<void> {
  await setDisabled(t.gatehouse.db.prisma, accountId, true);
}
