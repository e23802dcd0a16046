// `gatehouse apply`: makes the database match a config file, in one
// transaction, through the domains' write functions (so every rule, authority
// check, audit event, cache notification and secret digest is theirs).
//
// The plan is computed inside the transaction, under an advisory lock that
// serialises concurrent applies, so what is printed is what was done. Any
// failure rolls everything back, audit events included. A dry run does the
// same work and then rolls back: it fails exactly when the apply would.
//
// Every change is audited (action, before/after, `via: apply`) by its write
// function, as the actor who applies.
//
// Order (references must exist when they are written):
//   1. prune roles, then clients
//   2. create / update resources; a servedBy may name clients the file
//      creates in step 3 (the cycle "resource served by a client that is
//      allowed to call it": the plan has checked every reference resolves)
//   3. create / update clients (their resources now exist)
//   4. create / update roles (their resources and scopes now exist)
//   5. prune resources (their roles are gone)
//   6. prune, create and update idps (upstream identity providers; they
//      reference nothing). A secret comes from the environment variable the
//      entry's clientSecretEnv names; one that is unset or empty is an error.
//   7. prune, create and update access policies
// The access-policy guard (src/kernel/guard.ts, src/access/enforce.ts) is
// deferred to the end: the stored policies, as the file leaves them, are
// evaluated once on the final state. A violation refuses the whole apply
// (ApplyRefusedError carries the plan, so the CLI shows it with the
// violations); nothing is written.
import { createClientAs, deleteClientAs, updateClientAs } from '../clients/writes.ts';
import type { Db } from '../db/client.ts';
import type { Actor } from '../kernel/actor.ts';
import { GatehouseError, PolicyViolationError, ValidationError, type PolicyBreach } from '../kernel/errors.ts';
import { deferGuard } from '../kernel/guard.ts';
import { installPolicyGuard } from '../access/enforce.ts';
import { deletePolicyAs, putPolicyAs } from '../access/writes.ts';
import type { Tx } from '../kernel/tx.ts';
import { ensureBuiltInResources } from '../resources/store.ts';
import { createResourceAs, createRoleAs, deleteResourceAs, deleteRoleAs, updateResourceAs, updateRoleAs } from '../resources/writes.ts';
import { DeclarativeError, entryError, fileField, type Desired, type EntryRef, type Kind } from './format.ts';
import { computePlan, loadCurrent, type Plan } from './plan.ts';
import { createIdpAs, deleteIdpAs, updateIdpAs } from '../federation/writes.ts';

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
  /** who applies: checked and recorded by each write function */
  actor: Actor;
  prune?: boolean;
  dryRun?: boolean;
  /** KEY_ENCRYPTION_KEY: idp client secrets are stored encrypted (required when the file has idps) */
  kek?: Buffer;
  /** where clientSecretEnv names are read (default process.env) */
  env?: Record<string, string | undefined>;
}

const APPLY_LOCK_ID = 0x6170706c; // "appl"

class DryRunDone extends Error {
  constructor(readonly plan: Plan) {
    super('dry run');
  }
}

/** The plan breaks an access policy: nothing was applied. */
export class ApplyRefusedError extends PolicyViolationError {
  override name = 'ApplyRefusedError';
  constructor(
    violations: readonly PolicyBreach[],
    readonly plan: Plan,
  ) {
    super(violations);
  }
}

export async function applyConfig(db: Db, desired: Desired, opts: ApplyOptions): Promise<ApplyResult> {
  installPolicyGuard();
  const prune = opts.prune ?? false;
  try {
    return await db.$transaction(
      async (tx) => {
        await tx.$executeRaw`SELECT pg_advisory_xact_lock(${APPLY_LOCK_ID}::bigint)`;
        await ensureBuiltInResources(tx);
        const needsKek = desired.idps.length > 0;
        if (needsKek && !opts.kek) throw new DeclarativeError(`${desired.source}: idps need KEY_ENCRYPTION_KEY`);
        const current = await loadCurrent(tx, desired.idps.length > 0 ? opts.kek : undefined);
        const idpSecrets = resolveIdpSecrets(desired, opts.env ?? process.env);
        const plan = computePlan(desired, current, { prune, idpSecrets });
        let secrets: GeneratedSecret[];
        try {
          secrets = await deferGuard(tx, () => execute(tx, desired, plan, opts.actor, { kek: opts.kek, idpSecrets }));
        } catch (err) {
          if (err instanceof PolicyViolationError) throw new ApplyRefusedError(err.violations, plan);
          throw err;
        }
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

/** Each idp entry's client secret, read from the environment variable it names. */
function resolveIdpSecrets(desired: Desired, env: Record<string, string | undefined>): Map<string, string> {
  const out = new Map<string, string>();
  for (const { ref, value } of desired.idps) {
    if (value.clientSecretEnv === undefined) continue;
    const secret = env[value.clientSecretEnv];
    if (secret === undefined || secret === '') {
      throw entryError(desired.source, ref, 'clientSecretEnv', `the environment variable ${value.clientSecretEnv} is not set or empty`);
    }
    out.set(value.name, secret);
  }
  return out;
}

/** The one line of an unexpected error worth showing (Prisma puts the cause last). */
function reasonOf(err: unknown): string {
  const lines = String((err as Error)?.message ?? err)
    .split('\n')
    .map((l) => l.trim())
    .filter(Boolean);
  return lines[lines.length - 1] ?? 'unexpected error';
}

async function execute(
  tx: Tx,
  desired: Desired,
  plan: Plan,
  actor: Actor,
  idp: { kek: Buffer | undefined; idpSecrets: Map<string, string> },
): Promise<GeneratedSecret[]> {
  const { source } = desired;
  const key = (kind: Kind, id: string) => `${kind}\0${id}`;
  const created = new Set(plan.create.map((e) => key(e.kind, e.id)));
  const changed = new Map(plan.update.map((e) => [key(e.kind, e.id), e.changes] as const));
  const deleted = (kind: Kind) => plan.delete.filter((e) => e.kind === kind).map((e) => e.id);
  const secrets: GeneratedSecret[] = [];
  const opts = { via: 'apply' };

  /** Runs one write for an entry of the file; its errors name the entry and field. */
  const at = async <T>(ref: EntryRef, fn: () => Promise<T>): Promise<T> => {
    try {
      return await fn();
    } catch (err) {
      if (err instanceof DeclarativeError) throw err;
      if (err instanceof ValidationError) throw entryError(source, ref, fileField(ref.kind, err.field), err.reason);
      if (err instanceof GatehouseError && (err.code === 'forbidden' || err.code === 'policy_violation')) throw err;
      throw entryError(source, ref, undefined, reasonOf(err));
    }
  };
  const pruning = async (kind: Kind, id: string, fn: () => Promise<void>) => {
    try {
      await fn();
    } catch (err) {
      if (err instanceof GatehouseError && err.code === 'forbidden') throw err;
      throw new DeclarativeError(`${source}: --prune cannot delete ${kind} '${id}': ${reasonOf(err)}`);
    }
  };

  // 1. prune policies, roles, then clients
  for (const name of deleted('policy')) await pruning('policy', name, () => deletePolicyAs(tx, actor, name, opts));
  for (const name of deleted('role')) await pruning('role', name, () => deleteRoleAs(tx, actor, name, opts));
  for (const id of deleted('client')) await pruning('client', id, () => deleteClientAs(tx, actor, id, opts));

  // 2. resources; servedBy may name the clients created in step 3
  const pendingServers = new Set(plan.create.filter((e) => e.kind === 'client').map((e) => e.id));
  for (const { ref, value: r } of desired.resources) {
    if (created.has(key('resource', r.identifier))) {
      const input = { identifier: r.identifier, name: r.name, scopes: r.scopes, accessTokenTtl: r.ttl, signingAlg: r.signingAlg, servedBy: r.servedBy, requireRoles: r.requireRoles, sensitiveScopes: r.sensitive };
      await at(ref, () => createResourceAs(tx, actor, input, { ...opts, pendingServers }));
      continue;
    }
    const changes = changed.get(key('resource', r.identifier)) ?? [];
    if (changes.length === 0) continue;
    const patch = {
      ...(changes.includes('name') && { name: r.name }),
      ...(changes.includes('scopes') && { scopes: r.scopes }),
      ...(changes.includes('ttl') && { accessTokenTtl: r.ttl }),
      ...(changes.includes('signingAlg') && { signingAlg: r.signingAlg }),
      ...(changes.includes('servedBy') && { servedBy: r.servedBy }),
      ...(changes.includes('requireRoles') && { requireRoles: r.requireRoles }),
      ...(changes.includes('sensitive') && { sensitiveScopes: r.sensitive }),
    };
    await at(ref, () => updateResourceAs(tx, actor, r.identifier, patch, { ...opts, pendingServers }));
  }

  // 3. clients
  for (const { ref, value: c } of desired.clients) {
    const { id, ...settings } = c;
    let secret: string | undefined;
    if (created.has(key('client', id))) {
      secret = (await at(ref, () => createClientAs(tx, actor, c, opts))).clientSecret;
    } else if (changed.has(key('client', id))) {
      // every field, so the result is the file's whatever the stored state was
      secret = (await at(ref, () => updateClientAs(tx, actor, id, settings, opts))).clientSecret;
    }
    if (secret !== undefined) secrets.push({ client_id: id, client_secret: secret });
  }

  // 4. roles
  for (const { ref, value: r } of desired.roles) {
    if (created.has(key('role', r.name))) await at(ref, () => createRoleAs(tx, actor, r, opts));
    else if (changed.has(key('role', r.name))) await at(ref, () => updateRoleAs(tx, actor, r.name, { resource: r.resource, scopes: r.scopes }, opts));
  }

  // 5. prune resources
  for (const id of deleted('resource')) await pruning('resource', id, () => deleteResourceAs(tx, actor, id, opts));

  // 6. idps
  for (const name of deleted('idp')) await pruning('idp', name, async () => void (await deleteIdpAs(tx, actor, name, opts)));
  for (const { ref, value: d } of desired.idps) {
    const kek = idp.kek!;
    const clientSecret = idp.idpSecrets.get(d.name);
    const fields = { issuer: d.issuer, clientId: d.clientId, scopes: d.scopes, domains: d.domains, disabled: d.disabled };
    if (created.has(key('idp', d.name))) {
      await at(ref, () => createIdpAs(tx, actor, kek, { name: d.name, ...fields, clientSecret: clientSecret! }, opts));
    } else if (changed.has(key('idp', d.name))) {
      await at(ref, () => updateIdpAs(tx, actor, kek, d.name, { ...fields, ...(clientSecret !== undefined && { clientSecret }) }, opts));
    }
  }

  // 7. policies (evaluated with everything else when the guard runs at the end)
  for (const { ref, value: p } of desired.policies) {
    if (created.has(key('policy', p.name)) || changed.has(key('policy', p.name))) await at(ref, () => putPolicyAs(tx, actor, p, opts));
  }

  return secrets;
}
