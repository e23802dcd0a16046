// The client registry's write functions: what the CLI, the admin API and
// `apply` call to change clients, and nothing else does. Each takes the
// transaction (or opens one) and the actor, and does the change (store.ts,
// which also announces it with publishChange), its audit event and the
// actor's authority check together, in that one transaction: a change that is
// refused or cannot be audited leaves nothing behind.
//
// Authority (src/resources/authority.ts): no actor gives a client an
// admin-API permission it does not hold itself, and a client holding one the
// actor lacks may only lose power (renamed, disabled, narrowed, made
// stricter); anything that would let the actor act as it (its secret,
// redirect URIs, keys, auth method, public flag, enabling it …) is refused.
// The check runs on the result of the change, inside the transaction.
//
// Access policies (src/access): the last step of a create or update is
// guardWrite(tx) (src/kernel/guard.ts), which evaluates the stored policies on
// the transaction's state; a violation rolls the whole change back.
import { auditChange, changedFields } from '../audit/audit.ts';
import { assertHolds, holds, type Actor, type WriteOptions } from '../kernel/actor.ts';
import { ForbiddenError } from '../kernel/errors.ts';
import { guardWrite } from '../kernel/guard.ts';
import { inTransaction, type DbOrTx } from '../kernel/tx.ts';
import { adminScopesOf } from '../resources/authority.ts';
import {
  CLIENT_SETTINGS,
  createClient,
  deleteClient,
  getClient,
  rotateClientSecret,
  updateClient,
  type ClientInput,
  type ClientPatch,
  type ClientSettings,
  type ClientView,
} from './store.ts';

const target = (id: string) => ({ type: 'client', id });
const asRecord = (v: ClientView) => v as unknown as Record<string, unknown>;
const via = (opts: WriteOptions) => (opts.via !== undefined ? { via: opts.via } : {});
const subset = (a: readonly string[], b: readonly string[]) => a.every((x) => b.includes(x));

type Versioned = WriteOptions & { expectedVersion?: number };

/** The changes that only take power away from a client: allowed whoever holds it. */
const TAKES_POWER_AWAY: Partial<Record<keyof ClientSettings, (before: ClientSettings, after: ClientSettings) => boolean>> = {
  name: () => true,
  disabled: (_b, a) => a.disabled,
  scopes: (b, a) => subset(a.scopes, b.scopes),
  resources: (b, a) => subset(a.resources, b.resources),
  grants: (b, a) => subset(a.grants, b.grants),
  redirectUris: (b, a) => subset(a.redirectUris, b.redirectUris),
  postLogoutRedirectUris: (b, a) => subset(a.postLogoutRedirectUris, b.postLogoutRedirectUris),
  requireDpop: (_b, a) => a.requireDpop,
  requirePar: (_b, a) => a.requirePar,
  profile: (_b, a) => a.profile === 'fapi2',
  requireMfa: (_b, a) => a.requireMfa,
};

/**
 * Refuses (ForbiddenError) a change from `before` to `after` that gives an
 * admin-API permission the actor lacks, or that touches a client holding one
 * in any way but taking power away.
 */
function assertMayChange(actor: Actor, before: ClientSettings, after: ClientSettings): void {
  const lacking = [...adminScopesOf(after), ...adminScopesOf(before)].filter((s) => !holds(actor, s));
  if (lacking.length === 0) return;
  for (const field of CLIENT_SETTINGS) {
    if (JSON.stringify(before[field]) === JSON.stringify(after[field])) continue;
    if (!TAKES_POWER_AWAY[field]?.(before, after)) throw new ForbiddenError(lacking[0]!);
  }
}

/** Registers a client (`clientSecret`: its generated secret, returned only here). */
export async function createClientAs(db: DbOrTx, actor: Actor, input: ClientInput, opts: WriteOptions = {}): Promise<{ client: ClientView; clientSecret?: string }> {
  return inTransaction(db, async (tx) => {
    const created = await createClient(tx, input);
    assertHolds(actor, adminScopesOf(created.client));
    await auditChange(tx, actor, 'client.create', target(created.client.id), { ...via(opts), after: created.client });
    await guardWrite(tx);
    return created;
  });
}

/** Changes a client (store.ts updateClient); a new secret, when one is generated, is returned once. */
export async function updateClientAs(
  db: DbOrTx,
  actor: Actor,
  id: string,
  patch: ClientPatch,
  opts: Versioned = {},
): Promise<{ client: ClientView; clientSecret?: string }> {
  return inTransaction(db, async (tx) => {
    const before = await getClient(tx, id);
    const updated = await updateClient(tx, id, patch, { expectedVersion: opts.expectedVersion ?? before.version });
    assertMayChange(actor, before, updated.client);
    const changes = changedFields(asRecord(before), asRecord(updated.client));
    await auditChange(tx, actor, 'client.update', target(id), { ...via(opts), before, after: updated.client, changes });
    await guardWrite(tx);
    return updated;
  });
}

/** Deletes a client: allowed whatever it holds (it takes power away). */
export async function deleteClientAs(db: DbOrTx, actor: Actor, id: string, opts: Versioned = {}): Promise<void> {
  await inTransaction(db, async (tx) => {
    const before = await getClient(tx, id);
    await deleteClient(tx, id, { expectedVersion: opts.expectedVersion ?? before.version });
    await auditChange(tx, actor, 'client.delete', target(id), { ...via(opts), before });
  });
}

/** Replaces a client's secret (returned once); refused for a client holding admin-API permissions the actor lacks. */
export async function rotateClientSecretAs(
  db: DbOrTx,
  actor: Actor,
  id: string,
  opts: Versioned & { graceSeconds: number },
): Promise<{ clientSecret: string; previousSecretExpiresAt: Date | null; client: ClientView }> {
  return inTransaction(db, async (tx) => {
    const before = await getClient(tx, id);
    assertHolds(actor, adminScopesOf(before));
    const rotated = await rotateClientSecret(tx, id, { graceSeconds: opts.graceSeconds, expectedVersion: opts.expectedVersion ?? before.version });
    const changes = changedFields(asRecord(before), asRecord(rotated.client));
    await auditChange(tx, actor, 'client.rotate_secret', target(id), { ...via(opts), before, after: rotated.client, changes, graceSeconds: opts.graceSeconds });
    return rotated;
  });
}
