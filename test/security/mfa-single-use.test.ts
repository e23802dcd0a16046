// Security: a TOTP code and a recovery code sign in at most once, even when
// an attacker who knows the password races the same code from many browsers
// at once, against one instance or spread over two instances on one database.
// Each round: 12 browsers pass the password step (the verify page each), then
// all submit the same code at once; exactly one reaches the application.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestApp, type TestApp } from '../helpers/app.ts';
import { Browser, createWebClient, page, type Page, type Step, type TestClient } from '../sso/flow.ts';
import { MFA_FAILED, enrolledUser, isVerifyPage, passwordStep, submitCode, totp } from '../sso/mfa-flow.ts';

const RACERS = 12;
const ROUNDS = 3;
// The throttle is not what is tested here: room for every racer's attempt.
const ENV = { LOGIN_MAX_FAILURES: '1000', LOGIN_IP_MAX_FAILURES: '100000' };

interface Outcome {
  signedIn: number;
  refused: number;
  other: string[];
}

function tally(steps: Step[]): Outcome {
  const o: Outcome = { signedIn: 0, refused: 0, other: [] };
  for (const s of steps) {
    if (s.kind === 'redirect' && s.location.searchParams.get('code')) o.signedIn++;
    else if (s.kind === 'page' && s.page.status === 400 && s.page.html.includes(MFA_FAILED)) o.refused++;
    else o.other.push(s.kind === 'page' ? `${s.page.status} ${s.page.url}` : s.location.href);
  }
  return o;
}

/** RACERS browsers at the verify step of `email`, spread over `apps` in turn. */
async function atVerifyStep(apps: TestApp[], client: TestClient, email: string): Promise<{ b: Browser; p: Page }[]> {
  return Promise.all(
    Array.from({ length: RACERS }, async (_, n) => {
      const b = new Browser(apps[n % apps.length]!);
      const p = page((await passwordStep(b, client, email)).step);
      expect(isVerifyPage(p)).toBe(true);
      return { b, p };
    }),
  );
}

async function race(at: { b: Browser; p: Page }[], code: string): Promise<Outcome> {
  return tally(await Promise.all(at.map(({ b, p }) => submitCode(b, p, '/mfa', code))));
}

function suite(name: string, instances: 1 | 2) {
  describe(name, () => {
    let apps: TestApp[] = [];
    let normal: TestClient;
    let strict: TestClient;

    beforeAll(async () => {
      const first = await createTestApp({ env: ENV });
      apps = [first];
      if (instances === 2) apps.push(await createTestApp({ env: ENV, database: first.database }));
      normal = await createWebClient(first, { name: 'Wiki', firstParty: true });
      strict = await createWebClient(first, { name: 'Payroll', firstParty: true, requireMfa: true });
    });
    afterAll(async () => {
      for (const a of [...apps].reverse()) await a.close();
    });

    it(`the same TOTP code from ${RACERS} browsers at once signs in exactly once (${ROUNDS} rounds)`, { timeout: 180_000 }, async () => {
      for (let round = 0; round < ROUNDS; round++) {
        const user = await enrolledUser(apps[0]!, strict, `totp-${instances}-${round}@example.com`);
        const racers = await atVerifyStep(apps, normal, user.email);
        // enrolment used the current step; the next one is within the window
        const outcome = await race(racers, await totp(user.secret, 1));
        expect(outcome, `round ${round}`).toEqual({ signedIn: 1, refused: RACERS - 1, other: [] });
      }
    });

    it(`the same recovery code from ${RACERS} browsers at once signs in exactly once, and is used up (${ROUNDS} rounds)`, { timeout: 180_000 }, async () => {
      const user = await enrolledUser(apps[0]!, strict, `recovery-${instances}@example.com`);
      const db = apps[0]!.gatehouse.db.prisma;
      for (let round = 0; round < ROUNDS; round++) {
        const racers = await atVerifyStep(apps, normal, user.email);
        const outcome = await race(racers, user.recoveryCodes[round]!);
        expect(outcome, `round ${round}`).toEqual({ signedIn: 1, refused: RACERS - 1, other: [] });
        expect(await db.recoveryCode.count({ where: { accountId: user.id, usedAt: { not: null } } })).toBe(round + 1);
      }
    });
  });
}

suite('single-use second factors, one instance', 1);
suite('single-use second factors, two instances on one database', 2);
