// The last hour of this process's own counters, minute by minute, for the
// admin console's overview (GET /admin/v1/stats). Prometheus counters only
// grow; this keeps 60 one-minute buckets so the last hour can be read
// without a Prometheus server. In memory, per process (with several workers,
// each answers for itself).
export interface MinuteCounts {
  /** start of the minute (ISO 8601) */
  minute: string;
  tokens: number;
  tokenErrors: number;
  logins: number;
  loginFailures: number;
  requests: number;
  serverErrors: number;
}

export type RecentCounter = 'tokens' | 'tokenErrors' | 'logins' | 'loginFailures' | 'loginsLocked' | 'requests' | 'serverErrors';

export interface LastHour {
  tokensIssued: number;
  tokenErrors: number;
  logins: { success: number; failure: number; locked: number };
  requests: number;
  serverErrors: number;
  /** oldest first, 60 entries, the current minute last */
  perMinute: MinuteCounts[];
}

const MINUTES = 60;
const FIELDS: RecentCounter[] = ['tokens', 'tokenErrors', 'logins', 'loginFailures', 'loginsLocked', 'requests', 'serverErrors'];

export interface RecentCounts {
  add(counter: RecentCounter, now?: number): void;
  lastHour(now?: number): LastHour;
}

export function recentCounts(): RecentCounts {
  // bucket i holds minute `stamp[i]` (minutes since the epoch)
  const stamp = new Float64Array(MINUTES).fill(-1);
  const counts = Object.fromEntries(FIELDS.map((f) => [f, new Float64Array(MINUTES)])) as Record<RecentCounter, Float64Array>;
  const slot = (minute: number) => {
    const i = minute % MINUTES;
    if (stamp[i] !== minute) {
      stamp[i] = minute;
      for (const f of FIELDS) counts[f][i] = 0;
    }
    return i;
  };
  return {
    add(counter, now = Date.now()) {
      counts[counter][slot(Math.floor(now / 60_000))]! += 1;
    },
    lastHour(now = Date.now()) {
      const current = Math.floor(now / 60_000);
      const perMinute: MinuteCounts[] = [];
      const total = Object.fromEntries(FIELDS.map((f) => [f, 0])) as Record<RecentCounter, number>;
      for (let m = current - MINUTES + 1; m <= current; m++) {
        const i = m % MINUTES;
        const v = (f: RecentCounter) => (stamp[i] === m ? counts[f][i]! : 0);
        for (const f of FIELDS) total[f] += v(f);
        perMinute.push({
          minute: new Date(m * 60_000).toISOString(),
          tokens: v('tokens'),
          tokenErrors: v('tokenErrors'),
          logins: v('logins'),
          loginFailures: v('loginFailures') + v('loginsLocked'),
          requests: v('requests'),
          serverErrors: v('serverErrors'),
        });
      }
      return {
        tokensIssued: total.tokens,
        tokenErrors: total.tokenErrors,
        logins: { success: total.logins, failure: total.loginFailures, locked: total.loginsLocked },
        requests: total.requests,
        serverErrors: total.serverErrors,
        perMinute,
      };
    },
  };
}
