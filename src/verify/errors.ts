// Errors of the verifier and the RFC 6750 / RFC 9449 challenge that goes with them.

/** The `error` codes a protected resource answers with (RFC 6750 §3.1, RFC 9449 §7.1). */
export type VerifyErrorCode = 'invalid_token' | 'insufficient_scope' | 'invalid_dpop_proof' | 'invalid_request';

/**
 * Why a request was refused. `verifier.verify()` rejects with nothing else.
 *
 * - `status` is the HTTP status to answer with: 401 (no, bad or unusable token
 *   or DPoP proof) or 403 (valid token, missing scope).
 * - `error` / `description` go to the client (`WWW-Authenticate` and the JSON
 *   body); they never contain the token. `cause` may hold the underlying error
 *   (jose, network) for your logs.
 * - `scope` is set for `insufficient_scope`: the scopes the request needs,
 *   space-separated.
 * - `credentialsMissing` is true when the request carried no access token at
 *   all; the challenge then carries no error code (RFC 6750 §3.1).
 *
 * @example
 * try { await verifier.verify(token) } catch (e) { if (e instanceof VerifyError) console.log(e.status, e.error) }
 */
export class VerifyError extends Error {
  override readonly name = 'VerifyError';
  readonly status: 401 | 403;
  readonly error: VerifyErrorCode;
  readonly description: string;
  readonly scope?: string;
  readonly credentialsMissing: boolean;

  constructor(
    error: VerifyErrorCode,
    description: string,
    opts: { status?: 401 | 403; scope?: string; cause?: unknown; credentialsMissing?: boolean } = {},
  ) {
    super(description, opts.cause === undefined ? undefined : { cause: opts.cause });
    this.error = error;
    this.description = description;
    this.status = opts.status ?? (error === 'insufficient_scope' ? 403 : 401);
    if (opts.scope !== undefined) this.scope = opts.scope;
    this.credentialsMissing = opts.credentialsMissing ?? false;
  }
}

/** Options of {@link wwwAuthenticate}. */
export interface ChallengeOptions {
  /** `Bearer` (default) or `DPoP` — answer with the scheme the client used. */
  scheme?: 'Bearer' | 'DPoP';
  /** The protection space, e.g. the API's name. Left out when not given. */
  realm?: string;
  /** DPoP only: the proof algorithms accepted (`algs` parameter, RFC 9449 §7.1). */
  algs?: readonly string[];
}

/** A quoted-string with only printable ASCII: control characters and non-ASCII become `?`, `"` and `\` are escaped. */
function quoted(value: string): string {
  const printable = value.replace(/[^\x20-\x7e]/g, '?');
  return `"${printable.replace(/["\\]/g, (c) => `\\${c}`)}"`;
}

/**
 * The `WWW-Authenticate` value for a refused request (RFC 6750 §3, RFC 9449 §7.1):
 * `Bearer realm="orders", error="insufficient_scope", error_description="…", scope="orders:read"`.
 * Quotes and backslashes are escaped and anything outside printable ASCII
 * is replaced, so the value is always a legal header. A request without any
 * token gets the bare challenge (`Bearer realm="orders"`).
 */
export function wwwAuthenticate(err: VerifyError, opts: ChallengeOptions = {}): string {
  const params: string[] = [];
  if (opts.realm !== undefined) params.push(`realm=${quoted(opts.realm)}`);
  if (!err.credentialsMissing) {
    params.push(`error=${quoted(err.error)}`, `error_description=${quoted(err.description)}`);
    if (err.scope !== undefined) params.push(`scope=${quoted(err.scope)}`);
  }
  const scheme = opts.scheme ?? 'Bearer';
  if (scheme === 'DPoP' && opts.algs && opts.algs.length > 0) params.push(`algs=${quoted(opts.algs.join(' '))}`);
  return params.length > 0 ? `${scheme} ${params.join(', ')}` : scheme;
}
