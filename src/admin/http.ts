// Request plumbing of the admin API: JSON bodies (@koa/bodyparser, with our
// own 400 / 413 / 415 answers and depth and NUL checks), ETag / If-Match, and
// query-string parsing.
import { bodyParser } from '@koa/bodyparser';
import type { Context } from 'koa';
import { z } from 'zod';
import { ProblemError } from './problem.ts';

export const BODY_LIMIT_BYTES = 256 * 1024;

/** True when the request announces a body (Content-Length > 0 or chunked). */
function hasBody(ctx: Context): boolean {
  if (ctx.get('Transfer-Encoding')) return true;
  const len = ctx.get('Content-Length');
  return len !== '' && len !== '0';
}

const isJson = (ctx: Context) => ctx.is('application/json', 'application/*+json') !== false;

// Reads and parses the body of a JSON request (any `+json` type): size limit,
// Content-Encoding (gzip, deflate), charset, and __proto__ keys refused (co-body, @hapi/bourne).
const parseJsonBody = bodyParser({
  enableTypes: ['json'],
  detectJSON: isJson,
  jsonStrict: false,
  jsonLimit: BODY_LIMIT_BYTES,
  parsedMethods: ['POST', 'PUT', 'PATCH', 'DELETE'],
});

/** The status co-body / raw-body give a failed read → our problem. */
function bodyProblem(err: unknown, limit: number): ProblemError {
  const status = (err as { status?: unknown }).status;
  // the rest of the body is never read: the connection cannot carry another request
  if (status === 413) return new ProblemError('payload-too-large', `the request body must be at most ${limit} bytes`, { headers: { Connection: 'close' } });
  if (status === 415) return new ProblemError('unsupported-media-type', `the request body cannot be read (${(err as Error).message.split('\n')[0]!.slice(0, 200)})`);
  return new ProblemError('malformed-json', `the request body is not valid JSON (${(err as Error).message.split('\n')[0]!.slice(0, 200)})`);
}

/**
 * The request body parsed as JSON, or undefined when there is none.
 * Accepts application/json, application/merge-patch+json and any other
 * `+json` type; anything else with a body is 415.
 */
export async function readJson(ctx: Context): Promise<unknown> {
  if (!hasBody(ctx)) return undefined;
  if (!isJson(ctx)) {
    throw new ProblemError('unsupported-media-type', 'the request body must be JSON (Content-Type: application/json)', {
      headers: { 'Accept-Patch': 'application/merge-patch+json, application/json' },
    });
  }
  try {
    await parseJsonBody(ctx, async () => {});
  } catch (err) {
    // a body of nothing but whitespace is no body
    const text = (err as { body?: unknown }).body;
    if (typeof text === 'string' && text.trim() === '') return undefined;
    throw bodyProblem(err, BODY_LIMIT_BYTES);
  }
  const value = (ctx.request as { body?: unknown }).body;
  if (value === undefined || (typeof value === 'string' && value.trim() === '')) return undefined;
  // Validators and the audit trail walk values recursively: refuse absurd
  // nesting up front. PostgreSQL text cannot hold U+0000: refuse it here
  // rather than fail in the database.
  const flaw = inspectJson(value, MAX_JSON_DEPTH);
  if (flaw === 'depth') {
    throw new ProblemError('validation-error', `the request body is nested more than ${MAX_JSON_DEPTH} levels deep`, {
      errors: [{ field: '(body)', message: `is nested more than ${MAX_JSON_DEPTH} levels deep` }],
    });
  }
  if (flaw !== undefined) {
    throw new ProblemError('validation-error', `invalid ${flaw.field}: must not contain the NUL character (U+0000)`, {
      errors: [{ field: flaw.field, message: 'must not contain the NUL character (U+0000)' }],
    });
  }
  return value;
}

export const MAX_JSON_DEPTH = 32;

/**
 * 'depth' when arrays/objects nest deeper than `max`; the top-level field
 * holding a string (or key) with U+0000; otherwise undefined. Iterative: no
 * recursion on hostile input.
 */
function inspectJson(value: unknown, max: number): 'depth' | { field: string } | undefined {
  const stack: [unknown, number, string][] = [[value, 0, '(body)']];
  while (stack.length > 0) {
    const [v, depth, field] = stack.pop()!;
    if (typeof v === 'string') {
      if (v.includes('\0')) return { field };
      continue;
    }
    if (typeof v !== 'object' || v === null) continue;
    if (depth >= max) return 'depth';
    if (Array.isArray(v)) {
      for (const child of v) stack.push([child, depth + 1, field]);
    } else {
      for (const [k, child] of Object.entries(v)) {
        const f = depth === 0 ? k : field;
        if (k.includes('\0')) return { field: depth === 0 ? '(body)' : field };
        stack.push([child, depth + 1, f]);
      }
    }
  }
  return undefined;
}

/** A body that must be a JSON object (empty body: `{}` when optional, else 422). */
export function asObject(body: unknown, required: boolean): Record<string, unknown> {
  if (body === undefined) {
    if (!required) return {};
    throw new ProblemError('validation-error', 'this operation needs a JSON object as request body', {
      errors: [{ field: '(body)', message: 'is required' }],
    });
  }
  if (typeof body !== 'object' || body === null || Array.isArray(body)) {
    throw new ProblemError('validation-error', 'the request body must be a JSON object', {
      errors: [{ field: '(body)', message: 'must be a JSON object' }],
    });
  }
  return body as Record<string, unknown>;
}

// ------------------------------------------------------------------ ETags

/** Strong ETag of a representation version: `"<version>"`. */
export const etag = (version: string | number) => `"${version}"`;

/**
 * The versions listed in If-Match: undefined when the header is absent,
 * '*' for a wildcard. A `W/` prefix is tolerated (the tags are our own
 * version counters). A header that lists nothing usable matches nothing.
 */
export function ifMatch(ctx: Context): string[] | '*' | undefined {
  const raw = ctx.get('If-Match');
  if (raw === '') return undefined;
  if (raw.trim() === '*') return '*';
  const tags: string[] = [];
  for (const part of raw.split(',')) {
    const m = /^\s*(?:W\/)?"([^"]*)"\s*$/.exec(part);
    if (m) tags.push(m[1]!);
  }
  return tags;
}

/**
 * The version the client expects, as a number, for stores that take
 * `expectedVersion`: undefined without If-Match (or with `*`). A tag that is
 * not a version number can never match: 412 at once.
 */
export function expectedVersion(ctx: Context, current?: number): number | undefined {
  const tags = ifMatch(ctx);
  if (tags === undefined || tags === '*') return undefined;
  const nums = tags.filter((t) => /^\d{1,9}$/.test(t)).map(Number);
  if (current !== undefined && nums.includes(current)) return current;
  if (nums.length === 0) throw preconditionFailed(current);
  return nums[0];
}

/** For resources whose ETag is not a plain counter: compare the tag itself. */
export function assertIfMatch(ctx: Context, currentTag: string): void {
  const tags = ifMatch(ctx);
  if (tags === undefined || tags === '*') return;
  if (!tags.includes(currentTag)) throw preconditionFailed(currentTag);
}

export function preconditionFailed(current?: string | number): ProblemError {
  return new ProblemError(
    'precondition-failed',
    current === undefined
      ? 'If-Match does not match the current version; GET it again and retry'
      : `If-Match does not match the current version (ETag ${etag(current)}); GET it again and retry`,
    current === undefined ? {} : { headers: { ETag: etag(current) } },
  );
}

// ------------------------------------------------------------ query string

/** Parses the query string with a zod object schema; the first issue is a 400 naming the parameter. */
export function parseQuery<S extends z.ZodType>(ctx: Context, schema: S): z.output<S> {
  const raw: Record<string, string> = {};
  for (const [k, v] of Object.entries(ctx.query)) {
    if (v === undefined) continue;
    if (Array.isArray(v)) throw badQuery(k, 'must be given once');
    if (v.includes('\0') || k.includes('\0')) throw badQuery(k.replace(/\0/g, ''), 'must not contain the NUL character');
    raw[k] = v;
  }
  const r = schema.safeParse(raw);
  if (r.success) return r.data;
  const issue = r.error.issues[0]!;
  if (issue.code === 'unrecognized_keys') throw badQuery(String(issue.keys[0]), 'unknown query parameter');
  throw badQuery(issue.path.length > 0 ? String(issue.path[0]) : 'query', issue.message);
}

function badQuery(field: string, message: string): ProblemError {
  return new ProblemError('bad-request', `invalid query parameter ${field}: ${message}`, { errors: [{ field, message }] });
}

/** Sets a `Link: <…>; rel="next"` header for a page that has a next one. */
export function setNextLink(ctx: Context, nextCursor: string | null): void {
  if (nextCursor === null) return;
  const params = new URLSearchParams();
  for (const [k, v] of Object.entries(ctx.query)) if (typeof v === 'string' && k !== 'cursor') params.set(k, v);
  params.set('cursor', nextCursor);
  ctx.set('Link', `<${ctx.path}?${params.toString()}>; rel="next"`);
}
