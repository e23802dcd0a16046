// The interaction forms' bodies: application/x-www-form-urlencoded, read by
// @koa/bodyparser (co-body + qs) with a size limit; qs bounds the nesting
// depth (5), the number of fields (1000) and array lengths (20).
//
// Bad bodies never reach a step and never become a 5xx: the parser's errors
// are kept (onError) and formOf() turns them, and a body that is not a form,
// into a FormError that the routes answer with an HTML page.
import { bodyParser } from '@koa/bodyparser';
import type { Context, Middleware } from 'koa';

export const FORM_LIMIT_BYTES = 16 * 1024;

const PARSE_ERROR = Symbol('gatehouse form parse error');

export class FormError extends Error {
  constructor(
    readonly status: 413 | 415 | 400,
    message: string,
  ) {
    super(message);
  }
}

/** A submitted form's fields: strings only; a repeated field keeps its first value. */
export type Form = ReadonlyMap<string, string>;

/** Reads a form body into ctx.request.body (mounted on the POST routes only). */
export function formParser(limit = FORM_LIMIT_BYTES): Middleware {
  return bodyParser({
    enableTypes: ['form'],
    formLimit: limit,
    encoding: 'utf-8',
    onError: (err, ctx) => {
      (ctx.state as Record<symbol, unknown>)[PARSE_ERROR] = err;
    },
  }) as Middleware;
}

/** The form formParser read; throws FormError when there is none or it could not be read. */
export function formOf(ctx: Context): Form {
  if (!ctx.is('application/x-www-form-urlencoded')) throw new FormError(415, 'expected a form submission');
  const err = (ctx.state as Record<symbol, unknown>)[PARSE_ERROR] as { status?: unknown; statusCode?: unknown } | undefined;
  if (err) {
    const status = Number(err.status ?? err.statusCode);
    if (status === 413) throw new FormError(413, 'the form is too large');
    if (status === 415) throw new FormError(415, 'the form is sent in an encoding that is not supported');
    throw new FormError(400, 'the form could not be read');
  }
  const body = ctx.request.body;
  const fields = new Map<string, string>();
  if (!body || typeof body !== 'object' || Array.isArray(body)) return fields;
  for (const [k, v] of Object.entries(body as Record<string, unknown>)) {
    const first = Array.isArray(v) ? (v as unknown[])[0] : v;
    if (typeof first === 'string') fields.set(k, first);
  }
  return fields;
}
