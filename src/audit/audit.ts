// The audit trail: append-only events for admin changes, logins, consent,
// logout and key rotation. Events never hold secrets: callers pass views
// (never records with digests or hashes), and `scrub` removes any field whose
// name says it is secret, as a second line of defence.
//
// An admin change is recorded by the domain's write function, in the change's
// own transaction (auditChange): a change that cannot be audited does not
// happen, and an audited change did.
import type { Db } from '../db/client.ts';
import type { Actor } from '../kernel/actor.ts';
import { Prisma } from '../db/client.ts';
import { ValidationError } from '../kernel/errors.ts';
import { pageLimit, toPage, type Page, type PageRequest } from '../kernel/pagination.ts';

/** Actor.type, and 'anonymous' for login attempts by nobody known. */
export type ActorType = Actor['type'] | 'anonymous';

export interface AuditEventInput {
  /** dotted verb, e.g. client.create, login.failure, key.rotate */
  action: string;
  actor: { type: ActorType; id?: string | null };
  target?: { type: string; id: string | null } | null;
  requestId?: string | null;
  ip?: string | null;
  details?: Record<string, unknown> | null;
}

export interface AuditEvent {
  id: string;
  occurredAt: Date;
  action: string;
  actorType: string;
  actorId: string | null;
  targetType: string | null;
  targetId: string | null;
  requestId: string | null;
  ip: string | null;
  details: unknown;
}

const SECRET_KEY = /secret|password|hash|digest|token|private|totp|recovery|^d$|^k$/i;

/** Deep copy without secret-looking fields (and with Dates as ISO strings). */
export function scrub(value: unknown, depth = 0): unknown {
  if (depth > 8) return '[truncated]';
  if (value instanceof Date) return value.toISOString();
  if (Array.isArray(value)) return value.map((v) => scrub(v, depth + 1));
  if (value && typeof value === 'object') {
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(value)) {
      if (SECRET_KEY.test(k)) continue;
      out[k] = scrub(v, depth + 1);
    }
    return out;
  }
  if (typeof value === 'bigint') return value.toString();
  return value;
}

type Executor = Pick<Db, 'auditEvent'>;

export async function recordAudit(db: Executor, e: AuditEventInput): Promise<void> {
  await db.auditEvent.create({
    data: {
      action: e.action,
      actorType: e.actor.type,
      actorId: e.actor.id ?? null,
      targetType: e.target?.type ?? null,
      targetId: e.target?.id ?? null,
      requestId: e.requestId ?? null,
      ip: e.ip ?? null,
      details: e.details ? (scrub(e.details) as Prisma.InputJsonValue) : Prisma.JsonNull,
    },
  });
}

/**
 * Records a change made by `actor`; run it in the change's transaction. For
 * a person acting through a client the client is kept as `viaClient`, and an
 * exchanged token's `act` claim as `act`.
 */
export async function auditChange(
  tx: Executor,
  actor: Actor,
  action: string,
  target: { type: string; id: string },
  details: Record<string, unknown> = {},
): Promise<void> {
  await recordAudit(tx, {
    action,
    actor: { type: actor.type, id: actor.id },
    target,
    requestId: actor.requestId ?? null,
    ip: actor.ip ?? null,
    details: {
      ...details,
      ...(actor.clientId !== undefined && actor.clientId !== actor.id && { viaClient: actor.clientId }),
      ...(actor.act !== undefined && { act: actor.act }),
    },
  });
}

/** Field names that differ between two views (for update events). */
export function changedFields(before: Record<string, unknown>, after: Record<string, unknown>, ignore: string[] = ['updatedAt', 'version']): string[] {
  const keys = new Set([...Object.keys(before), ...Object.keys(after)]);
  return [...keys].filter((k) => !ignore.includes(k) && JSON.stringify(before[k]) !== JSON.stringify(after[k])).sort();
}

export interface AuditQuery extends PageRequest {
  action?: string;
  actorId?: string;
  targetType?: string;
  targetId?: string;
  since?: Date;
  until?: Date;
}

/** Events newest first, one page at a time (src/kernel/pagination.ts); the cursor is an event id. */
export async function listAuditEvents(db: Db, q: AuditQuery = {}): Promise<Page<AuditEvent>> {
  const limit = pageLimit(q.limit);
  const where: Prisma.AuditEventWhereInput = {};
  if (q.action) where.action = q.action.endsWith('.*') ? { startsWith: q.action.slice(0, -1) } : q.action;
  if (q.actorId) where.actorId = q.actorId;
  if (q.targetType) where.targetType = q.targetType;
  if (q.targetId) where.targetId = q.targetId;
  if (q.since || q.until) where.occurredAt = { ...(q.since ? { gte: q.since } : {}), ...(q.until ? { lt: q.until } : {}) };
  if (q.cursor !== undefined) {
    if (!/^\d{1,18}$/.test(q.cursor)) throw new ValidationError('cursor', 'must be the nextCursor of a previous page');
    where.id = { lt: BigInt(q.cursor) };
  }
  const rows = await db.auditEvent.findMany({ where, orderBy: { id: 'desc' }, take: limit + 1 });
  return toPage(
    rows.map((r) => ({ ...r, id: r.id.toString() })),
    limit,
    (e) => e.id,
  );
}

/**
 * Cleanup step (src/db/cleanup.ts): deletes at most `batchSize` events older
 * than the retention period (FOR UPDATE SKIP LOCKED, so instances never wait
 * on each other); returns how many went.
 */
export async function pruneAuditEvents(db: Db, batchSize: number, retentionDays: number): Promise<number> {
  return db.$executeRaw`
    DELETE FROM audit_events WHERE id IN (
      SELECT id FROM audit_events
      WHERE occurred_at < now() - make_interval(days => ${retentionDays}::int)
      ORDER BY id LIMIT ${batchSize}::int FOR UPDATE SKIP LOCKED)`;
}

const EMAIL_SHAPE = /^[^\s@]{1,64}@[^\s@]{1,255}$/;

/**
 * Login outcomes and the lockouts they start, as audit events. The login
 * name is kept only when it looks like an email address: people sometimes
 * type their password into the email field.
 */
/**
 * A login outcome as the audit trail records it. accounts/store.ts emits its
 * LoginEvent, which has this shape; declared here so that audit/ imports no
 * domain (the domains import audit/ to record their changes).
 */
export interface AuditedLoginEvent {
  type: 'login.failure' | 'login.locked' | 'login.success';
  accountId?: string;
  email: string;
  ip?: string;
  reason?: string;
  idp?: string;
  /** the lockouts the attempt started */
  lockouts?: readonly { kind: string; lockedUntil: Date; lockCount: number }[];
}

export async function auditLoginEvent(db: Executor, e: AuditedLoginEvent): Promise<void> {
  const actor = e.accountId ? { type: 'user' as const, id: e.accountId } : { type: 'anonymous' as const };
  const target = { type: 'user', id: e.accountId ?? null };
  const email = EMAIL_SHAPE.test(e.email) ? e.email : undefined;
  await recordAudit(db, {
    action: e.type,
    actor,
    target,
    ip: e.ip ?? null,
    details: { ...(email ? { email } : {}), ...(e.reason ? { reason: e.reason } : {}), ...(e.idp ? { idp: e.idp } : {}) },
  });
  for (const l of e.lockouts ?? []) {
    await recordAudit(db, {
      action: 'login.lockout',
      actor,
      target: l.kind === 'account' ? target : { type: l.kind, id: l.kind === 'ip' ? (e.ip ?? null) : null },
      ip: e.ip ?? null,
      details: { kind: l.kind, lockedUntil: l.lockedUntil, lockCount: l.lockCount, ...(email ? { email } : {}) },
    });
  }
}
