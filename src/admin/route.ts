// One route of the admin API: its HTTP method and path, the scope it needs,
// its query, body and response schemas, and its handler. The table of these
// drives both the router (index.ts) and the OpenAPI document (openapi.ts),
// so the two cannot drift apart.
import type { Context } from 'koa';
import type Provider from 'oidc-provider';
import { z } from 'zod';
import type { ClientRegistry } from '../clients/registry.ts';
import { assertPlainInput, parseWith } from '../kernel/validation.ts';
import type { Config } from '../config/config.ts';
import type { Mailer } from '../mail/mailer.ts';
import type { Db } from '../db/client.ts';
import type { Actor } from '../kernel/actor.ts';
import type { Keyring } from '../keys/index.ts';
import type { Logger } from '../logging/logger.ts';
import type { LastHour } from '../metrics/recent.ts';
import type { RevocationList } from '../oidc/revocations.ts';
import type { BackchannelSender } from '../oidc/sessions.ts';
import type { ReplayStore } from '../verify/index.ts';
import type { ResourceCatalog } from '../resources/cache.ts';
import type { AdminPrincipal } from './auth.ts';
import { asObject, etag, expectedVersion, ifMatch, parseQuery, preconditionFailed, readJson } from './http.ts';
import { ProblemError } from './problem.ts';
import { ConflictError } from '../kernel/errors.ts';

export const ADMIN_BASE = '/admin/v1';

export interface AdminDeps {
  db: Db;
  config: Config;
  logger: Logger;
  /** the keyring this instance signs with now (tokens are verified against its public keys) */
  keyring: () => Keyring;
  clients: ClientRegistry;
  resources: ResourceCatalog;
  /** revoked JWT ids, in memory */
  revocations: RevocationList;
  /** the provider serving now (to check tokens issued within a grant, as introspection does) */
  provider: () => Provider;
  /** reloads the signing keys at once (after a rotation) */
  reloadKeys: () => Promise<void>;
  /** back-channel logout with the provider serving now */
  backchannel: BackchannelSender;
  /** used DPoP proofs, shared by every instance (src/oidc/replay.ts) */
  dpopReplay: ReplayStore;
  /** outgoing mail (invitations) */
  mailer: Mailer;
  /** this process's counters of the last hour (src/metrics/recent.ts), for GET /stats */
  lastHour?: () => LastHour;
}

export type Method = 'get' | 'post' | 'put' | 'patch' | 'delete';

/** A documented response; `schema` names an entry of the component schemas. */
export interface ResponseSpec {
  status: number;
  description: string;
  schema?: string;
  headers?: ('ETag' | 'Location' | 'Link')[];
}

export interface BodySpec {
  /** name of the component schema (openapi.ts) */
  schema: string;
  required: boolean;
  /** secret fields this body may carry (otherwise any field named like a secret is refused) */
  secrets?: readonly string[];
}

/** What a handler receives. */
export interface Call<Q, B> {
  ctx: Context;
  deps: AdminDeps;
  principal: AdminPrincipal | undefined;
  params: Record<string, string>;
  query: Q;
  body: B;
}

interface RouteMeta {
  method: Method;
  /** OpenAPI path template relative to /admin/v1, e.g. /clients/{id} */
  path: string;
  operationId: string;
  tag: string;
  summary: string;
  description?: string;
  /** the narrow scope this route needs (gatehouse:admin always suffices); null: public */
  scope: string | null;
  /** PATCH/DELETE and other writes that honour If-Match */
  ifMatch?: boolean;
  /** can answer 409 */
  conflicts?: boolean;
  responses: ResponseSpec[];
}

interface RouteSpec<QS extends z.ZodType | undefined, BS extends z.ZodType | undefined> extends RouteMeta {
  query?: QS;
  body?: BodySpec & { zod: NonNullable<BS> };
  handle(call: Call<QS extends z.ZodType ? z.output<QS> : Record<string, never>, BS extends z.ZodType ? z.output<BS> : undefined>): Promise<void>;
}

/** A route with its types erased, as the table holds it. */
export interface AdminRoute extends RouteMeta {
  query?: z.ZodType;
  body?: BodySpec & { zod: z.ZodType };
  run(call: Omit<Call<unknown, unknown>, 'query' | 'body'>): Promise<void>;
}

const EMPTY_QUERY = z.strictObject({});

export function defineRoute<QS extends z.ZodType | undefined = undefined, BS extends z.ZodType | undefined = undefined>(
  spec: RouteSpec<QS, BS>,
): AdminRoute {
  const { handle, ...meta } = spec;
  type H = Parameters<typeof handle>[0];
  return {
    ...meta,
    async run(call) {
      // Query first (cheap), then the body: both only once the caller is authorised.
      const query = spec.query ? parseQuery(call.ctx, spec.query) : parseQuery(call.ctx, EMPTY_QUERY);
      let body: unknown = undefined;
      if (spec.body) {
        const raw = asObject(await readJson(call.ctx), spec.body.required);
        assertPlainInput(raw, spec.body.secrets);
        body = parseWith(spec.body.zod as z.ZodType, raw);
      }
      await handle({ ...call, query, body } as H);
    },
  };
}


// ------------------------------------------------------------------ replies

export function reply(
  ctx: Context,
  status: number,
  body: unknown,
  opts: { etag?: string | number; location?: string } = {},
): void {
  if (opts.etag !== undefined) ctx.set('ETag', etag(opts.etag));
  if (opts.location !== undefined) ctx.set('Location', opts.location);
  ctx.status = status;
  if (body !== undefined) {
    ctx.body = body;
    ctx.type = 'application/json';
  }
}

export const location = (...segments: string[]) => `${ADMIN_BASE}/${segments.map(encodeURIComponent).join('/')}`;

// -------------------------------------------------------------------- actor

/**
 * The actor of this call, for the domains' write functions (which check what
 * it may give and record it in the audit trail): a person's token acts as the
 * person, through its client; a machine token acts as its client. An
 * exchanged token's `act` claim is kept (AdminPrincipal.act, when present).
 * Its scopes are the token's: a token asked for with fewer scopes acts with fewer.
 */
export function actorOf(call: Pick<Call<unknown, unknown>, 'ctx' | 'principal'>): Actor {
  const p = call.principal;
  if (!p) throw new Error('actorOf: this route has no authenticated caller');
  return {
    type: p.isUser ? 'user' : 'client',
    id: p.isUser ? p.subject : p.clientId,
    clientId: p.clientId,
    ...(p.act && { act: p.act }),
    requestId: typeof call.ctx.state.requestId === 'string' ? call.ctx.state.requestId : null,
    ip: call.ctx.ip || null,
    scopes: p.scopes,
  };
}

// ------------------------------------------------------ optimistic concurrency

/**
 * Runs a write guarded by the resource's version. `attempt(check)` reads the
 * current state, calls `check(version)` — which answers 412 when If-Match
 * names another version and returns the version to pass to the store as
 * `expectedVersion` — and writes. If the store then reports that the version
 * moved (someone wrote between our read and our write): with If-Match the
 * caller's version is gone, 412; without If-Match the write is retried on the
 * fresh state (at most three times), so the audit event's `before` is always
 * the state the write replaced.
 */
export async function versionedWrite<T>(
  ctx: Context,
  attempt: (check: (current: number) => number) => Promise<T>,
  currentVersion: () => Promise<number | undefined>,
): Promise<T> {
  for (let round = 0; ; round++) {
    let seen: number | undefined;
    const check = (current: number): number => {
      seen = current;
      const expected = expectedVersion(ctx, current);
      if (expected !== undefined && expected !== current) throw preconditionFailed(current);
      return current;
    };
    try {
      return await attempt(check);
    } catch (err) {
      if (!(err instanceof ConflictError) || seen === undefined) throw err;
      const now = await currentVersion();
      if (now === seen) throw err; // a conflict of state, not of versions (e.g. a built-in resource)
      if (now === undefined) throw new ProblemError('not-found', 'it was deleted meanwhile');
      const tags = ifMatch(ctx);
      if (tags !== undefined && tags !== '*') throw preconditionFailed(now);
      if (round >= 2) throw new ProblemError('conflict', 'it keeps changing concurrently; retry');
    }
  }
}
