// The client address of a request (ctx.ip) under TRUST_PROXY, decided in one
// place for everything that reads it: login throttling, audit events, the
// access log and oidc-provider (which runs inside this app's context, so its
// ctx.ip is this one; its own `proxy` flag is never consulted).
//
// Koa's own `proxy` mode believes the leftmost X-Forwarded-For entry, which
// the client writes: any string, rotated at will, became a throttle key and
// an audit address. Here only entries appended by trusted proxies count:
//
// - hop count N: the chain is the header's entries followed by the socket
//   peer; the client is N entries left of the peer (with fewer entries, the
//   leftmost, which a trusted proxy still wrote);
// - CIDRs: from the socket peer leftwards, skip addresses inside the trusted
//   ranges; the first one outside is the client (the peer must itself be
//   trusted for the header to count at all).
//
// Only valid IP literals are taken; anything else (a port, a name, junk)
// makes the socket address the client address.
import type Koa from 'koa';
import { addressRanges, formatCidr, normalizeAddress, parseCidr } from './ip.ts';

/** TRUST_PROXY, parsed: which X-Forwarded-For entries to believe. */
export type TrustProxy = { mode: 'none' } | { mode: 'hops'; hops: number } | { mode: 'cidrs'; cidrs: string[] };

/** The most proxies a hop count may name (a longer chain is a misconfiguration). */
export const MAX_PROXY_HOPS = 20;

/**
 * Parses TRUST_PROXY: `false`/`0` (none), a hop count, or comma-separated
 * CIDRs. `true` is refused: it used to mean "believe the leftmost entry",
 * which the client writes. Throws an Error whose message completes
 * "invalid TRUST_PROXY: …".
 */
export function parseTrustProxy(raw: string): TrustProxy {
  const value = raw.trim();
  if (/^(false|0)$/i.test(value)) return { mode: 'none' };
  if (/^true$/i.test(value)) {
    throw new Error('`true` would believe any forged X-Forwarded-For; give the number of proxies in front (e.g. 1) or their CIDRs (e.g. 10.0.0.0/8)');
  }
  if (/^\d+$/.test(value)) {
    const hops = Number(value);
    if (hops > MAX_PROXY_HOPS) throw new Error(`a hop count must be at most ${MAX_PROXY_HOPS}`);
    return { mode: 'hops', hops };
  }
  const cidrs = value.split(',').map((s) => s.trim()).filter(Boolean).map((entry) => {
    const c = parseCidr(entry);
    if (!c) throw new Error(`"${entry.slice(0, 64)}" is neither a hop count nor a CIDR (e.g. 1, or 10.0.0.0/8,fd00::/8)`);
    return formatCidr(c);
  });
  if (cidrs.length === 0) return { mode: 'none' };
  return { mode: 'cidrs', cidrs };
}

export type ClientAddressResolver = (socketAddress: string | undefined, forwardedFor: string | undefined) => string;

export function clientAddressResolver(trust: TrustProxy): ClientAddressResolver {
  const peerOf = (socketAddress: string | undefined) => normalizeAddress(socketAddress) ?? socketAddress ?? '';
  if (trust.mode === 'none') return peerOf;
  if (trust.mode === 'hops') {
    const { hops } = trust;
    return (socketAddress, forwardedFor) => {
      const peer = peerOf(socketAddress);
      if (!forwardedFor) return peer;
      const entries = forwardedFor.split(',');
      return normalizeAddress(entries[Math.max(0, entries.length - hops)]) ?? peer;
    };
  }
  const trusted = addressRanges(trust.cidrs);
  return (socketAddress, forwardedFor) => {
    const peer = peerOf(socketAddress);
    if (!forwardedFor || !normalizeAddress(socketAddress) || !trusted.has(peer)) return peer;
    const entries = forwardedFor.split(',');
    for (let i = entries.length - 1; i >= 0; i--) {
      const address = normalizeAddress(entries[i]);
      if (address === undefined) return peer;
      if (i === 0 || !trusted.has(address)) return address;
    }
    return peer;
  };
}

const RESOLVED = Symbol('gatehouse.clientAddress');

/**
 * Installs the resolver as `ip` on the app's request prototype (once, like
 * src/http/issuer.ts), computed on first read and kept for the request.
 * Koa's own X-Forwarded-For handling is switched off.
 */
export function pinClientAddress(app: Koa, trust: TrustProxy): void {
  const resolve = clientAddressResolver(trust);
  app.proxy = false;
  type Req = Koa.Request & { [RESOLVED]?: string };
  Object.defineProperty(app.request, 'ip', {
    configurable: true,
    get(this: Req): string {
      if (this[RESOLVED] === undefined) {
        const xff = this.req.headers['x-forwarded-for']; // node joins repeated headers with ", "
        this[RESOLVED] = resolve(this.req.socket.remoteAddress, Array.isArray(xff) ? xff.join(',') : xff);
      }
      return this[RESOLVED];
    },
    set(this: Req, value: string) {
      this[RESOLVED] = value;
    },
  });
}
