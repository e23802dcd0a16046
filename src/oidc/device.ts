// The device authorization grant (RFC 8628), what oidc-provider leaves to us
// (features.deviceFlow is configured in provider.ts; the pages are the
// interactions domain's, src/interactions/device.ts):
//
// - `interval` in the device authorization response (§3.2): oidc-provider
//   sends none, so clients would assume 5 s anyway; it is said explicitly.
// - `slow_down` (§3.5): oidc-provider never answers it. A poll that would be
//   answered authorization_pending and comes sooner than the code's current
//   interval after the previous poll is answered slow_down instead, and the
//   interval grows by 5 s "for this and all subsequent requests". The last
//   poll and the interval live in one oidc_payloads row per device code
//   (model DevicePoll, id: sha-256 of the device code, pruned with the other
//   expired payloads), written by one INSERT … ON CONFLICT DO UPDATE, so
//   concurrent polls on any instance are judged one after the other.
//
// Device codes are single use under concurrency like every consumable value
// (single-use.ts: the adapter's consume is a conditional UPDATE).
import { createHash } from 'node:crypto';
import type { Middleware } from 'koa';
import type Provider from 'oidc-provider';
import type pg from 'pg';

/** Seconds a device waits between polls (RFC 8628 default). */
export const POLL_INTERVAL_SECONDS = 5;
/** Added to a code's interval on each slow_down (RFC 8628 §3.5). */
export const SLOW_DOWN_STEP_SECONDS = 5;
/** A poll this much early still counts as on time (network jitter). */
const TOLERANCE_SECONDS = 0.5;

export const DEVICE_CODE_GRANT = 'urn:ietf:params:oauth:grant-type:device_code';

const installed = new WeakSet<Provider>();

/**
 * Records a poll that oidc-provider answered authorization_pending; true when
 * it came too soon (answer slow_down).
 */
async function tooSoon(pool: pg.Pool, deviceCode: string): Promise<boolean> {
  const id = createHash('sha256').update(deviceCode).digest('base64url');
  const { rows } = await pool.query<{ slow: boolean | null }>({
    text: `INSERT INTO oidc_payloads AS o (model, id, payload, expires_at)
      VALUES ('DevicePoll', $1, jsonb_build_object('interval', $2::int, 'at', extract(epoch from now())), now() + interval '30 minutes')
      ON CONFLICT (model, id) DO UPDATE SET payload = (
        SELECT jsonb_build_object(
          'interval', (o.payload->>'interval')::int + CASE WHEN early THEN $3::int ELSE 0 END,
          'at', extract(epoch from now()),
          'slow', early)
        FROM (SELECT extract(epoch from now()) - (o.payload->>'at')::float8 < (o.payload->>'interval')::int - $4::float8 AS early) e)
      RETURNING (o.payload->>'slow')::boolean AS slow`,
    values: [id, POLL_INTERVAL_SECONDS, SLOW_DOWN_STEP_SECONDS, TOLERANCE_SECONDS],
  });
  return rows[0]?.slow === true;
}

/** Called on every provider built: the interval and slow_down (see above). */
export function installDevicePolling(provider: Provider, pool: pg.Pool): void {
  if (installed.has(provider)) return;
  installed.add(provider);
  const middleware: Middleware = async (ctx, next) => {
    await next();
    if (ctx.method !== 'POST') return;
    const oidc = (ctx as { oidc?: { route?: string; params?: Record<string, unknown> } }).oidc;
    const body = ctx.body as Record<string, unknown> | undefined;
    if (!oidc || !body || typeof body !== 'object') return;
    if (oidc.route === 'device_authorization' && ctx.status === 200 && typeof body.device_code === 'string') {
      body.interval = POLL_INTERVAL_SECONDS;
      return;
    }
    const code = oidc.params?.device_code;
    if (oidc.route === 'token' && body.error === 'authorization_pending' && oidc.params?.grant_type === DEVICE_CODE_GRANT && typeof code === 'string') {
      if (await tooSoon(pool, code)) {
        ctx.body = { error: 'slow_down', error_description: `you are polling too quickly; wait at least ${SLOW_DOWN_STEP_SECONDS} seconds more between requests` };
      }
    }
  };
  provider.use(middleware);
}
