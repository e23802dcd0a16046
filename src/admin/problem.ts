// RFC 9457 problem details for the admin API, and the translation of every
// domain error into one. Nothing here ever renders a stack trace: unknown
// errors become a generic 500 (logged by the caller with the request id).
import type { Context } from 'koa';
import { GatehouseError, PolicyViolationError, ValidationError, type ErrorCode } from '../kernel/errors.ts';

export const PROBLEM_CONTENT_TYPE = 'application/problem+json';

/** The problem types this API answers with; `type` is `urn:gatehouse:problem:<slug>`. */
export const PROBLEM_TYPES = {
  'bad-request': { status: 400, title: 'Bad request' },
  'malformed-json': { status: 400, title: 'Malformed JSON' },
  unauthorized: { status: 401, title: 'Unauthorized' },
  forbidden: { status: 403, title: 'Insufficient scope' },
  'not-found': { status: 404, title: 'Not found' },
  'method-not-allowed': { status: 405, title: 'Method not allowed' },
  conflict: { status: 409, title: 'Conflict' },
  'precondition-failed': { status: 412, title: 'Precondition failed' },
  'payload-too-large': { status: 413, title: 'Payload too large' },
  'unsupported-media-type': { status: 415, title: 'Unsupported media type' },
  'validation-error': { status: 422, title: 'Validation failed' },
  'policy-violation': { status: 422, title: 'Refused by an access policy' },
  'internal-error': { status: 500, title: 'Internal error' },
  'service-unavailable': { status: 503, title: 'Service unavailable' },
} as const;
export type ProblemSlug = keyof typeof PROBLEM_TYPES;

export const problemTypeUri = (slug: ProblemSlug) => `urn:gatehouse:problem:${slug}`;

export interface FieldError {
  field: string;
  message: string;
}

/** A broken access policy, as the problem's `violations` list shows it. */
export interface ProblemViolation {
  policy: string;
  kind: string;
  message: string;
  path?: string;
}

export interface Problem {
  type: string;
  title: string;
  status: number;
  detail: string;
  instance?: string;
  errors?: FieldError[];
  violations?: ProblemViolation[];
  requestId?: string;
}

/** Thrown by handlers and middleware; rendered by renderProblem. */
export class ProblemError extends Error {
  override name = 'ProblemError';
  constructor(
    readonly slug: ProblemSlug,
    readonly detail: string,
    readonly extra: { errors?: FieldError[]; violations?: ProblemViolation[]; headers?: Record<string, string> } = {},
  ) {
    super(detail);
  }
  get status(): number {
    return PROBLEM_TYPES[this.slug].status;
  }
}

export const notFound = (detail: string) => new ProblemError('not-found', detail);
export const validation = (field: string, message: string) =>
  new ProblemError('validation-error', `invalid ${field}: ${message}`, { errors: [{ field, message }] });

/** The problem each code of the domains' error model becomes. */
const PROBLEM_OF: Record<ErrorCode, ProblemSlug> = {
  validation_failed: 'validation-error',
  not_found: 'not-found',
  conflict: 'conflict',
  version_mismatch: 'precondition-failed',
  forbidden: 'forbidden',
  policy_violation: 'policy-violation',
};

/**
 * Maps an error to a problem: ProblemError as is, the domains' errors by
 * their code, anything else to a 500 (returned as undefined so the caller logs it).
 */
export function toProblemError(err: unknown): ProblemError | undefined {
  if (err instanceof ProblemError) return err;
  if (!(err instanceof GatehouseError)) return undefined;
  if (err instanceof ValidationError) return validation(err.field, err.reason);
  if (err instanceof PolicyViolationError) return new ProblemError('policy-violation', err.message, { violations: err.violations.map((v) => ({ ...v })) });
  const slug = PROBLEM_OF[err.code];
  return new ProblemError(slug, err.message, err.field !== undefined ? { errors: [{ field: err.field, message: err.message }] } : {});
}

export function renderProblem(ctx: Context, p: ProblemError): void {
  const { status, title } = PROBLEM_TYPES[p.slug];
  const body: Problem = {
    type: problemTypeUri(p.slug),
    title,
    status,
    detail: p.detail,
    instance: ctx.path,
    ...(p.extra.errors && { errors: p.extra.errors }),
    ...(p.extra.violations && { violations: p.extra.violations }),
    ...(typeof ctx.state.requestId === 'string' && { requestId: ctx.state.requestId }),
  };
  for (const [k, v] of Object.entries(p.extra.headers ?? {})) ctx.set(k, v);
  ctx.status = status;
  ctx.body = body;
  ctx.type = PROBLEM_CONTENT_TYPE;
}
