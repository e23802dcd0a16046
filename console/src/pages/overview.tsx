// Overview: counts, the last hour's token and login rates and errors (this
// process's own counters, GET /admin/v1/stats), and the signing keys.
import { call, can, type Page } from '../api.ts';
import { ErrorBox, Link, Loading, isNotFound, useLoad, when } from '../ui.tsx';
import type { Key } from './keys.tsx';

interface Stats {
  counts: Record<string, number>;
  lastHour: {
    tokensIssued: number;
    tokenErrors: number;
    logins: { success: number; failure: number; locked: number };
    requests: number;
    serverErrors: number;
    perMinute: { minute: string; tokens: number; tokenErrors: number; logins: number; loginFailures: number }[];
  };
}

function Bars({ values, label }: { values: number[]; label: string }) {
  const max = Math.max(1, ...values);
  const w = 4;
  return (
    <svg class="bars" viewBox={`0 0 ${values.length * w} 30`} role="img" aria-label={label} preserveAspectRatio="none">
      {values.map((v, i) => (
        <rect key={i} x={i * w} y={30 - (v / max) * 30} width={w - 1} height={(v / max) * 30} />
      ))}
    </svg>
  );
}

export function Overview() {
  const stats = useLoad(() => (can('gatehouse:audit:read') ? call<Stats>('/stats').then((r) => r.body) : Promise.resolve(undefined)), 'stats');
  const keys = useLoad(() => (can('gatehouse:keys:read') ? call<Page<Key>>('/keys', { query: { limit: '100' } }).then((r) => r.body.items) : Promise.resolve(undefined)), 'keys');
  const s = stats.data;
  const active = keys.data?.filter((k) => k.status === 'active') ?? [];
  const pending = keys.data?.filter((k) => k.status === 'pending') ?? [];
  const ageDays = (iso: string) => Math.floor((Date.now() - new Date(iso).getTime()) / 86_400_000);
  return (
    <>
      <h1>Overview</h1>
      {stats.loading && <Loading />}
      {!isNotFound(stats.error) && <ErrorBox error={stats.error} />}
      {s && (
        <>
          <section aria-labelledby="counts-title">
            <h2 id="counts-title">Counts</h2>
            <ul class="cards">
              {Object.entries(s.counts).map(([k, v]) => (
                <li key={k} class="card">
                  <span class="num">{v}</span> <span>{k}</span>
                </li>
              ))}
            </ul>
          </section>
          <section aria-labelledby="hour-title">
            <h2 id="hour-title">Last hour (this Gatehouse process)</h2>
            <ul class="cards">
              <li class="card">
                <span class="num">{s.lastHour.tokensIssued}</span> <span>tokens issued</span>
                <Bars values={s.lastHour.perMinute.map((m) => m.tokens)} label="Tokens issued per minute" />
              </li>
              <li class="card">
                <span class="num">{s.lastHour.tokenErrors}</span> <span>token errors</span>
                <Bars values={s.lastHour.perMinute.map((m) => m.tokenErrors)} label="Token errors per minute" />
              </li>
              <li class="card">
                <span class="num">{s.lastHour.logins.success}</span> <span>sign-ins</span>
                <Bars values={s.lastHour.perMinute.map((m) => m.logins)} label="Sign-ins per minute" />
              </li>
              <li class="card">
                <span class="num">{s.lastHour.logins.failure + s.lastHour.logins.locked}</span> <span>failed sign-ins</span>
                <Bars values={s.lastHour.perMinute.map((m) => m.loginFailures)} label="Failed sign-ins per minute" />
              </li>
              <li class="card">
                <span class="num">{s.lastHour.serverErrors}</span> <span>server errors (5xx) of {s.lastHour.requests} requests</span>
              </li>
            </ul>
          </section>
        </>
      )}
      {can('gatehouse:keys:read') && (
        <section aria-labelledby="keys-title">
          <h2 id="keys-title">Signing keys</h2>
          {keys.loading && <Loading />}
          <ErrorBox error={keys.error} />
          {keys.data && (
            <ul>
              {active.map((k) => (
                <li key={k.kid}>
                  {k.alg}: key <span class="mono">{k.kid}</span> signs, {ageDays(k.activatesAt)} days old.
                </li>
              ))}
              {pending.map((k) => (
                <li key={k.kid}>
                  Next rotation: {k.alg} key <span class="mono">{k.kid}</span> signs from {when(k.activatesAt)}.
                </li>
              ))}
              {pending.length === 0 && <li>No rotation is planned.</li>}
            </ul>
          )}
          <Link to="/keys">Manage keys</Link>
        </section>
      )}
    </>
  );
}
