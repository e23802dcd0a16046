// The walk-throughs' output: one line per check, saying what was expected
// (allowed or refused), what happened, and whether that is what the policy says.
import type { ApiResponse, TokenResponse } from './http.ts';

export interface Outcome {
  ok: boolean;
  result: string;
}

export class Report {
  checks = 0;
  failures = 0;

  constructor(private readonly print: (line: string) => void = (line) => console.log(line)) {}

  section(title: string): void {
    this.print('');
    this.print(title);
  }

  /** An operator action or a fact worth showing, not a check. */
  note(line: string): void {
    this.print(`       ${line}`);
  }

  async check(expected: 'allowed' | 'refused', label: string, run: () => Promise<Outcome>): Promise<void> {
    let outcome: Outcome;
    try {
      outcome = await run();
    } catch (err) {
      outcome = { ok: false, result: `error: ${(err as Error).message}` };
    }
    this.checks++;
    if (!outcome.ok) this.failures++;
    this.print(`  ${outcome.ok ? 'ok  ' : 'FAIL'} ${expected.padEnd(7)} ${label} → ${outcome.result}`);
  }

  summary(): string {
    return this.failures === 0 ? `all ${this.checks} checks passed` : `${this.failures} of ${this.checks} checks FAILED`;
  }
}

const errorOf = (body: unknown): string => {
  const b = (typeof body === 'object' && body !== null ? body : {}) as { error?: unknown };
  return typeof b.error === 'string' ? ` ${b.error}` : '';
};

/** An API answer: `401 invalid_token (WWW-Authenticate: Bearer …)`. */
export function describeApi(res: ApiResponse, withChallenge = false): string {
  return `${res.status}${errorOf(res.body)}${withChallenge && res.challenge ? ` (WWW-Authenticate: ${res.challenge})` : ''}`;
}

/** A token endpoint answer: `200 Bearer, scope "a b"` or `400 invalid_scope`. */
export function describeToken(res: TokenResponse): string {
  return res.status === 200 ? `200 token issued, scope "${res.body.scope ?? ''}"` : `${res.status} ${res.body.error ?? ''}`;
}

export const expectApi = (res: ApiResponse, status: number, withChallenge = false): Outcome => ({
  ok: res.status === status && (status < 400 || status >= 500 || !withChallenge || res.challenge !== undefined),
  result: describeApi(res, withChallenge),
});

export const expectTokenError = (res: TokenResponse, error: string): Outcome => ({
  ok: res.status >= 400 && res.body.error === error,
  result: describeToken(res),
});
