// /admin/v1/keys (signing keys) and /admin/v1/audit-events (the audit trail).
//
// Keys are never created, changed or deleted one by one: `POST keys/rotate`
// creates the next key and schedules the current one's retirement, and the
// cleanup job deletes keys once no unexpired token can carry their signature.
// Audit events are append-only: read routes only.
import { listAuditEvents, type AuditEvent } from '../../audit/audit.ts';
import { listSigningKeys } from '../../keys/index.ts';
import { rotateSigningKeyAs } from '../../keys/writes.ts';
import { LONGEST_SIGNED_TOKEN_SECONDS } from '../../oidc/lifetimes.ts';
import { pageLimit, toPage } from '../../kernel/pagination.ts';
import { setNextLink } from '../http.ts';
import { ProblemError } from '../problem.ts';
import { AuditQuery, KeyQuery, KeyRotationInput } from '../schemas.ts';
import { actorOf, defineRoute, location, reply, type AdminRoute } from '../route.ts';

export const keyRoutes: AdminRoute[] = [
  defineRoute({
    method: 'get',
    path: '/keys',
    operationId: 'listKeys',
    tag: 'keys',
    summary: 'List signing keys',
    description: 'Newest first, with their state (active, pending, retired, expired). No key material.',
    scope: 'gatehouse:keys:read',
    query: KeyQuery,
    responses: [{ status: 200, description: 'a page of keys', schema: 'KeyPage', headers: ['Link'] }],
    async handle({ ctx, deps, query }) {
      const all = (await listSigningKeys(deps.db)).filter((k) => query.status === undefined || k.status === query.status);
      let start = 0;
      if (query.cursor !== undefined) {
        const at = all.findIndex((k) => k.kid === query.cursor);
        if (at === -1) throw new ProblemError('bad-request', 'invalid query parameter cursor: unknown key', { errors: [{ field: 'cursor', message: 'unknown key' }] });
        start = at + 1;
      }
      const page = toPage(all.slice(start), pageLimit(query.limit), (k) => k.kid);
      setNextLink(ctx, page.nextCursor);
      reply(ctx, 200, page);
    },
  }),
  defineRoute({
    method: 'get',
    path: '/keys/{kid}',
    operationId: 'getKey',
    tag: 'keys',
    summary: 'Show a signing key',
    scope: 'gatehouse:keys:read',
    responses: [{ status: 200, description: 'the key', schema: 'KeyView' }],
    async handle({ ctx, deps, params }) {
      const key = (await listSigningKeys(deps.db)).find((k) => k.kid === params.kid);
      if (!key) throw new ProblemError('not-found', `key '${params.kid}' not found`);
      reply(ctx, 200, key);
    },
  }),
  defineRoute({
    method: 'post',
    path: '/keys/rotate',
    operationId: 'rotateKey',
    tag: 'keys',
    summary: 'Rotate a signing key',
    description:
      'Publishes a new key in /jwks at once (on every instance); it starts signing after `leadSeconds` (default KEY_ROTATION_LEAD_SECONDS; 0 signs at once, for emergencies). The key it replaces stays published until every token it signed has expired.',
    scope: 'gatehouse:keys:write',
    body: { schema: 'KeyRotationInput', required: false, zod: KeyRotationInput },
    responses: [{ status: 201, description: 'the new key', schema: 'KeyRotationResult', headers: ['Location'] }],
    async handle(call) {
      const { ctx, deps, body } = call;
      const alg = body.alg ?? 'RS256';
      const leadSeconds = body.leadSeconds ?? deps.config.keyRotationLeadSeconds;
      const r = await rotateSigningKeyAs(deps.db, actorOf(call), deps.config.keyEncryptionKey, { alg, leadSeconds, maxTokenTtlSeconds: LONGEST_SIGNED_TOKEN_SECONDS });
      // Other instances reload on the change notification; this one now, so
      // that the answer and this instance's /jwks agree.
      await deps.reloadKeys().catch(() => undefined);
      reply(ctx, 201, { kid: r.kid, alg: r.alg, activatesAt: r.activatesAt }, { location: location('keys', r.kid) });
    },
  }),
];

const toView = (e: AuditEvent) => ({
  id: e.id,
  occurredAt: e.occurredAt,
  action: e.action,
  actorType: e.actorType,
  actorId: e.actorId,
  targetType: e.targetType,
  targetId: e.targetId,
  requestId: e.requestId,
  ip: e.ip,
  details: e.details,
});

export const auditRoutes: AdminRoute[] = [
  defineRoute({
    method: 'get',
    path: '/audit-events',
    operationId: 'listAuditEvents',
    tag: 'audit-events',
    summary: 'List audit events',
    description: 'Newest first. Filters combine (AND).',
    scope: 'gatehouse:audit:read',
    query: AuditQuery,
    responses: [{ status: 200, description: 'a page of events', schema: 'AuditEventPage', headers: ['Link'] }],
    async handle({ ctx, deps, query }) {
      const page = await listAuditEvents(deps.db, {
        action: query.action,
        actorId: query.actor,
        targetType: query.target_type,
        targetId: query.target_id,
        since: query.since !== undefined ? new Date(query.since) : undefined,
        until: query.until !== undefined ? new Date(query.until) : undefined,
        cursor: query.cursor,
        limit: query.limit,
      });
      setNextLink(ctx, page.nextCursor);
      reply(ctx, 200, { items: page.items.map(toView), nextCursor: page.nextCursor });
    },
  }),
  defineRoute({
    method: 'get',
    path: '/audit-events/{id}',
    operationId: 'getAuditEvent',
    tag: 'audit-events',
    summary: 'Show an audit event',
    scope: 'gatehouse:audit:read',
    responses: [{ status: 200, description: 'the event', schema: 'AuditEventView' }],
    async handle({ ctx, deps, params }) {
      const id = params.id!;
      const missing = new ProblemError('not-found', `audit event '${id}' not found`);
      if (!/^\d{1,18}$/.test(id)) throw missing;
      // the page just below id + 1, newest first: its first event is id itself if it exists
      const { items } = await listAuditEvents(deps.db, { cursor: (BigInt(id) + 1n).toString(), limit: 1 });
      const e = items[0];
      if (!e || e.id !== BigInt(id).toString()) throw missing;
      reply(ctx, 200, toView(e));
    },
  }),
];
