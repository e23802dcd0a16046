// `gatehouse apply`: makes the database match a config file, in one
// transaction, through the domain stores (so every rule, cache notification
// and secret digest is theirs).
//
// The plan is computed inside the transaction, under an advisory lock that
// serialises concurrent applies, so what is printed is what was done. Any
// failure rolls everything back, audit events included. A dry run does the
// same work and then rolls back: it fails exactly when the apply would.
//
// Order (references must exist when they are written):
//   1. prune roles, then clients
//   2. create / update resources, without servedBy (it may name new clients)
//   3. create / update clients (their resources now exist)
//   4. set the servedBy of new and changed resources (the cycle "resource
//      served by a client that is allowed to call it" resolves here)
//   5. create / update roles (their resources and scopes now exist)
//   6. prune resources (their roles are gone)
import { ValidationError } from '../kernel/errors.ts';
import { createClient, deleteClient, getClient, updateClient } from '../clients/store.ts';
import type { Tx } from '../kernel/tx.ts';
import type { Db } from '../db/client.ts';
import { recordAudit, type AuditEventInput } from '../audit/audit.ts';
import { createRole, deleteRole, getRole, updateRole } from '../resources/roles.ts';
import { createResource, deleteResource, ensureBuiltInResources, getResource, updateResource } from '../resources/store.ts';
import { DeclarativeError, entryError, fileField, type Desired, type EntryRef, type Kind } from './format.ts';
import { computePlan, loadCurrent, type Current, type Plan } from './plan.ts';

export interface GeneratedSecret {
  client_id: string;
  client_secret: string;
}

export interface ApplyResult {
  plan: Plan;
  /** secrets generated for new confidential clients (and clients switched to a secret); empty on a dry run */
  secrets: GeneratedSecret[];
  /** false for a dry run */
  applied: boolean;
}

export interface ApplyOptions {
  prune?: boolean;
  dryRun?: boolean;
  /** who is applying, for the audit trail (default: the CLI) */
  actor?: AuditEventInput['actor'];
  requestId?: string | null;
  ip?: string | null;
}

const APPLY_LOCK_ID = 0x6170706c; // "appl"

class DryRunDone extends Error {
  constructor(readonly plan: Plan) {
    super('dry run');
  }
}

export async function applyConfig(db: Db, desired: Desired, opts: ApplyOptions = {}): Promise<ApplyResult> {
  const prune = opts.prune ?? false;
  try {
    return await db.$transaction(
      async (tx) => {
        await tx.$executeRaw`SELECT pg_advisory_xact_lock(${APPLY_LOCK_ID}::bigint)`;
        await ensureBuiltInResources(tx);
        const current = await loadCurrent(tx);
        const plan = computePlan(desired, current, { prune });
        const secrets = await execute(tx, desired, current, plan, opts);
        if (opts.dryRun) throw new DryRunDone(plan);
        return { plan, secrets, applied: true };
      },
      { maxWait: 10_000, timeout: 300_000 },
    );
  } catch (err) {
    if (err instanceof DryRunDone) return { plan: err.plan, secrets: [], applied: false };
    throw err;
  }
}

/** The one line of an unexpected error worth showing (Prisma puts the cause last). */
function reasonOf(err: unknown): string {
  const lines = String((err as Error)?.message ?? err)
    .split('\n')
    .map((l) => l.trim())
    .filter(Boolean);
  return lines[lines.length - 1] ?? 'unexpected error';
}

async function execute(tx: Tx, desired: Desired, current: Current, plan: Plan, opts: ApplyOptions): Promise<GeneratedSecret[]> {
  const { source } = desired;
  const key = (kind: Kind, id: string) => `${kind}\0${id}`;
  const created = new Set(plan.create.map((e) => key(e.kind, e.id)));
  const changed = new Map(plan.update.map((e) => [key(e.kind, e.id), e.changes] as const));
  const deleted = (kind: Kind) => plan.delete.filter((e) => e.kind === kind).map((e) => e.id);
  const secrets: GeneratedSecret[] = [];

  /** Runs one store call for an entry of the file; its errors name the entry and field. */
  const at = async <T>(ref: EntryRef, fn: () => Promise<T>): Promise<T> => {
    try {
      return await fn();
    } catch (err) {
      if (err instanceof DeclarativeError) throw err;
      if (err instanceof ValidationError) throw entryError(source, ref, fileField(ref.kind, err.field), err.reason);
      throw entryError(source, ref, undefined, reasonOf(err));
    }
  };
  const pruning = async (kind: Kind, id: string, fn: () => Promise<void>) => {
    try {
      await fn();
    } catch (err) {
      throw new DeclarativeError(`${source}: --prune cannot delete ${kind} '${id}': ${reasonOf(err)}`);
    }
  };

  // 1. prune roles, then clients
  for (const name of deleted('role')) await pruning('role', name, () => deleteRole(tx, name));
  for (const id of deleted('client')) await pruning('client', id, () => deleteClient(tx, id));

  // 2. resources, without servedBy
  for (const { ref, value: r } of desired.resources) {
    if (created.has(key('resource', r.identifier))) {
      await at(ref, () =>
        createResource(tx, {
          identifier: r.identifier,
          name: r.name,
          scopes: r.scopes,
          accessTokenTtl: r.ttl,
          signingAlg: r.signingAlg,
          servedBy: [],
          requireRoles: r.requireRoles,
        }),
      );
      continue;
    }
    const changes = changed.get(key('resource', r.identifier))?.filter((f) => f !== 'servedBy') ?? [];
    if (changes.length === 0) continue;
    const patch = {
      ...(changes.includes('name') && { name: r.name }),
      ...(changes.includes('scopes') && { scopes: r.scopes }),
      ...(changes.includes('ttl') && { accessTokenTtl: r.ttl }),
      ...(changes.includes('signingAlg') && { signingAlg: r.signingAlg }),
      ...(changes.includes('requireRoles') && { requireRoles: r.requireRoles }),
    };
    await at(ref, () => updateResource(tx, r.identifier, patch));
  }

  // 3. clients
  for (const { ref, value: c } of desired.clients) {
    const { id, ...settings } = c;
    let secret: string | undefined;
    if (created.has(key('client', id))) {
      secret = (await at(ref, () => createClient(tx, c))).clientSecret;
    } else if (changed.has(key('client', id))) {
      // every field, so the result is the file's whatever the stored state was
      secret = (await at(ref, () => updateClient(tx, id, settings))).clientSecret;
    }
    if (secret !== undefined) secrets.push({ client_id: id, client_secret: secret });
  }

  // 4. servedBy
  for (const { ref, value: r } of desired.resources) {
    const isNew = created.has(key('resource', r.identifier));
    if ((isNew && r.servedBy.length > 0) || changed.get(key('resource', r.identifier))?.includes('servedBy')) {
      await at(ref, () => updateResource(tx, r.identifier, { servedBy: r.servedBy }));
    }
  }

  // 5. roles
  for (const { ref, value: r } of desired.roles) {
    if (created.has(key('role', r.name))) await at(ref, () => createRole(tx, r));
    else if (changed.has(key('role', r.name))) await at(ref, () => updateRole(tx, r.name, { resource: r.resource, scopes: r.scopes }));
  }

  // 6. prune resources
  for (const id of deleted('resource')) await pruning('resource', id, () => deleteResource(tx, id));

  await audit(tx, plan, current, opts);
  return secrets;
}

const before = (current: Current, kind: Kind, id: string): unknown =>
  kind === 'resource' ? current.resources.get(id) : kind === 'client' ? current.clients.get(id) : current.roles.get(id);

const after = (tx: Tx, kind: Kind, id: string): Promise<unknown> =>
  kind === 'resource' ? getResource(tx, id) : kind === 'client' ? getClient(tx, id) : getRole(tx, id);

/** One audit event per change, with the views before and after (never secrets). */
async function audit(tx: Tx, plan: Plan, current: Current, opts: ApplyOptions): Promise<void> {
  const base = {
    actor: opts.actor ?? { type: 'cli' as const, id: null },
    requestId: opts.requestId ?? null,
    ip: opts.ip ?? null,
  };
  for (const e of plan.create) {
    await recordAudit(tx, { ...base, action: `${e.kind}.create`, target: { type: e.kind, id: e.id }, details: { via: 'apply', after: await after(tx, e.kind, e.id) } });
  }
  for (const e of plan.update) {
    await recordAudit(tx, {
      ...base,
      action: `${e.kind}.update`,
      target: { type: e.kind, id: e.id },
      details: { via: 'apply', changes: e.changes, before: before(current, e.kind, e.id), after: await after(tx, e.kind, e.id) },
    });
  }
  for (const e of plan.delete) {
    await recordAudit(tx, { ...base, action: `${e.kind}.delete`, target: { type: e.kind, id: e.id }, details: { via: 'apply', before: before(current, e.kind, e.id) } });
  }
}
