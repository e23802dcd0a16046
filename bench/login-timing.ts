// Does a failed login answer in the same time whatever the email? (issue 12:
// "the medians of 500 first attempts each differ by < 1 ms")
//
//   npx tsx bench/login-timing.ts
//
// Starts Gatehouse as its own process (from the sources, like
// BENCH_FROM_SOURCE=1; set BENCH_FROM_SOURCE=0 to run the compiled dist/ after
// `npm run build`) on a fresh database, makes the accounts, then sends
// LOGIN_TIMING_N (500) wrong-password logins through the real login form for
// each group:
//
//   unknown, first    an email no account has, never tried before
//   known, first      an account with no failed attempt yet
//   known, recent     an account with 2 recent failed attempts
//   unknown, recent   an unknown email with 2 recent failed attempts
//
// Each attempt is the only request in flight: the login page is loaded
// first (not timed), then the POST of the form is timed from the client
// (send → whole answer read). The groups take turns in a shuffled order per
// round, so a change in machine load falls on all of them alike. Prints each
// group's median (and quartiles) and each median's difference from the
// "unknown, first" one. Other processes' CPU use is printed too: on a busy
// machine the numbers are noise. Tests never assert timings; this is the
// measurement.
//
// BENCH_DATABASE_URL: the PostgreSQL server to create the throw-away database
// on (default postgresql://postgres@127.0.0.1:5432/postgres).
import { randomBytes } from 'node:crypto';
import os from 'node:os';
import { createAccount } from '../src/accounts/store.ts';
import { openDb } from '../src/db/client.ts';
import { navigate, openLoginPage } from './lib/browser.ts';
import { startCpuMeter } from './lib/cpu.ts';
import type { BenchContext, RunningTarget, WebFixtures } from './lib/types.ts';
import { TARGETS } from './targets.ts';

process.env.BENCH_FROM_SOURCE ??= '1';
const N = Number(process.env.LOGIN_TIMING_N ?? 500);
const PRIOR_FAILURES = 2;
const GENERIC_MESSAGE = 'Email or password is incorrect';

if (!Number.isInteger(N) || N < 1 || N > 100_000) {
  console.error('LOGIN_TIMING_N must be a whole number between 1 and 100000');
  process.exit(2);
}

type Group = 'unknown, first' | 'known, first' | 'known, recent' | 'unknown, recent';
const GROUPS: Group[] = ['unknown, first', 'known, first', 'known, recent', 'unknown, recent'];

const run = randomBytes(3).toString('hex');
const emailOf = (g: Group, i: number) => `${g.replace(', ', '-')}-${i}-${run}@timing.gatehouse.test`;
const wrongPassword = () => `wrong-${randomBytes(9).toString('base64url')}`;

/** One wrong-password login through the form; returns the POST's time in ms. */
async function failedLogin(t: RunningTarget, web: WebFixtures, email: string): Promise<number> {
  const page = await openLoginPage(t, web, 'openid');
  const form = { csrf: page.csrf, login: email, password: wrongPassword() };
  const t0 = performance.now();
  const res = await navigate(t.url, page.jar, 'POST', page.action, form);
  const html = await res.text();
  const ms = performance.now() - t0;
  if (res.status !== 400 || !html.includes(GENERIC_MESSAGE)) throw new Error(`${email}: expected the generic refusal, got HTTP ${res.status}`);
  return ms;
}

function shuffled<T>(xs: readonly T[]): T[] {
  const a = [...xs];
  for (let i = a.length - 1; i > 0; i--) {
    const j = Math.floor(Math.random() * (i + 1));
    [a[i], a[j]] = [a[j]!, a[i]!];
  }
  return a;
}

function quantile(sorted: number[], q: number): number {
  const pos = (sorted.length - 1) * q;
  const lo = Math.floor(pos);
  const hi = Math.ceil(pos);
  return sorted[lo]! + (sorted[hi]! - sorted[lo]!) * (pos - lo);
}

const fmt = (ms: number) => ms.toFixed(2).padStart(8);

const deferred: (() => Promise<void> | void)[] = [];
const ctx: BenchContext = {
  databaseServerUrl: process.env.BENCH_DATABASE_URL ?? 'postgresql://postgres@127.0.0.1:5432/postgres',
  workers: 1,
  defer: (fn) => void deferred.push(fn),
  log: (line) => console.log(line),
};

try {
  const target = await TARGETS.gatehouse.start(ctx);
  const web = target.fixtures.web;
  if (!web || !target.databaseUrl) throw new Error('the gatehouse target has no web client or database');

  console.log(`accounts: ${2 * N} (one argon2id hash each) …`);
  const handle = openDb({ url: target.databaseUrl, poolSize: 4 });
  try {
    const emails = [...Array.from({ length: N }, (_, i) => emailOf('known, first', i)), ...Array.from({ length: N }, (_, i) => emailOf('known, recent', i))];
    for (let i = 0; i < emails.length; i += 4) {
      await Promise.all(emails.slice(i, i + 4).map((email) => createAccount(handle.prisma, { email, name: null, password: web.password })));
    }
  } finally {
    await handle.close();
  }

  console.log(`recent failures: ${PRIOR_FAILURES} per email of the "recent" groups …`);
  for (let i = 0; i < N; i++) {
    for (let k = 0; k < PRIOR_FAILURES; k++) {
      await failedLogin(target, web, emailOf('known, recent', i));
      await failedLogin(target, web, emailOf('unknown, recent', i));
    }
  }
  // warm-up: the server's code paths (and the dummy hash) are hot before anything is measured
  for (let i = 0; i < 20; i++) await failedLogin(target, web, `warm-up-${i}-${run}@timing.gatehouse.test`);

  console.log(`measuring: ${N} attempts per group, one at a time …`);
  const times = new Map<Group, number[]>(GROUPS.map((g) => [g, []]));
  const cpu = startCpuMeter(() => [target.pid], () => []);
  const load0 = os.loadavg()[0]!;
  for (let i = 0; i < N; i++) {
    for (const g of shuffled(GROUPS)) times.get(g)!.push(await failedLogin(target, web, emailOf(g, i)));
  }
  const use = cpu();

  const base = quantile([...times.get('unknown, first')!].sort((a, b) => a - b), 0.5);
  console.log('');
  console.log(`group             n   median      p25      p75   median − "unknown, first"`);
  let worst = 0;
  for (const g of GROUPS) {
    const sorted = [...times.get(g)!].sort((a, b) => a - b);
    const median = quantile(sorted, 0.5);
    worst = Math.max(worst, Math.abs(median - base));
    console.log(`${g.padEnd(16)}${String(sorted.length).padStart(4)} ${fmt(median)} ${fmt(quantile(sorted, 0.25))} ${fmt(quantile(sorted, 0.75))}   ${(median - base >= 0 ? '+' : '') + (median - base).toFixed(2)} ms`);
  }
  console.log('');
  console.log(`largest difference of medians: ${worst.toFixed(2)} ms (${worst < 1 ? 'under' : 'NOT under'} 1 ms)`);
  console.log(`CPU while measuring: server ${use.serverCores} cores, this script ${use.loadGeneratorCores}, other processes ${use.otherCores}; load average ${load0.toFixed(2)} → ${os.loadavg()[0]!.toFixed(2)} on ${os.cpus().length} CPUs`);
  if (use.otherCores > 0.2) console.log('(other processes were busy: these numbers are noisy)');
} finally {
  while (deferred.length > 0) {
    try {
      await deferred.pop()!();
    } catch (err) {
      console.warn(`cleanup failed: ${(err as Error).message}`);
    }
  }
}
