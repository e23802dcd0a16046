// Reads an application/x-www-form-urlencoded request body, with a size limit.
import type { Context } from 'koa';

export const FORM_LIMIT_BYTES = 16 * 1024;

export class FormError extends Error {
  constructor(
    readonly status: 413 | 415 | 400,
    message: string,
  ) {
    super(message);
  }
}

/** The form's fields; a repeated field keeps its first value. */
export async function readForm(ctx: Context, limit = FORM_LIMIT_BYTES): Promise<Map<string, string>> {
  if (!ctx.is('application/x-www-form-urlencoded')) throw new FormError(415, 'expected a form submission');
  // A body parser mounted earlier may have read the stream already.
  const parsed = (ctx.request as { body?: unknown }).body;
  if (parsed && typeof parsed === 'object' && !Array.isArray(parsed) && !Buffer.isBuffer(parsed)) {
    const fields = new Map<string, string>();
    for (const [k, v] of Object.entries(parsed as Record<string, unknown>)) {
      const first = Array.isArray(v) ? (v as unknown[])[0] : v;
      if (typeof first === 'string') fields.set(k, first);
    }
    return fields;
  }
  const declared = Number(ctx.get('Content-Length') || 0);
  if (declared > limit) throw new FormError(413, 'the form is too large');
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of ctx.req as AsyncIterable<Buffer | string>) {
    const buf = typeof chunk === 'string' ? Buffer.from(chunk) : chunk;
    size += buf.length;
    if (size > limit) throw new FormError(413, 'the form is too large');
    chunks.push(buf);
  }
  const text = Buffer.concat(chunks).toString('utf8');
  const fields = new Map<string, string>();
  for (const [k, v] of new URLSearchParams(text)) {
    if (!fields.has(k)) fields.set(k, v);
  }
  return fields;
}
