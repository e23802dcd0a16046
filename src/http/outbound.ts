// The `fetch` that oidc-provider uses for every outgoing request it makes for
// Gatehouse: back-channel logout, a client's jwks_uri, sector_identifier_uri,
// request_uri. Those URLs come from client metadata, so without a guard they
// let whoever registers a client make Gatehouse call internal services
// (SSRF). Only public addresses may be reached, except the hosts and ranges
// OUTBOUND_ALLOWLIST names.
//
// The check runs when the connection is made, on the address connected to:
// a host name is resolved once, every address it resolves to is checked, and
// the socket connects to exactly those addresses (DNS rebinding cannot slip
// a private address in between a check and the connection). An IP literal
// in the URL is checked as it is (Node does no lookup for it). Redirects are
// new connections and are checked again.
import dns from 'node:dns';
import type { LookupFunction } from 'node:net';
import { Agent, buildConnector, fetch as undiciFetch } from 'undici';
import type { Logger } from '../logging/logger.ts';
import { addressRanges, NON_PUBLIC, normalizeAddress, type OutboundAllowlist } from './ip.ts';

export class OutboundRefusedError extends Error {
  readonly code = 'GATEHOUSE_OUTBOUND_REFUSED';
  constructor(
    readonly host: string,
    readonly address: string,
  ) {
    super(`outgoing request to ${host} refused: ${address} is not a public address (OUTBOUND_ALLOWLIST)`);
  }
}

type Fetch = (input: string | URL, init?: RequestInit) => Promise<Response>;

/**
 * A fetch whose connections only reach public addresses or allow-listed
 * ones. Refusals reject the request (oidc-provider reports it as that
 * request's failure: a failed back-channel logout, an invalid_client) and
 * log one warning with the host and address only: never the path, query or
 * body, which carry tokens. The caller's signal (oidc-provider's timeout) is
 * kept.
 */
export function guardedFetch(allow: OutboundAllowlist, logger: Logger): Fetch {
  const allowedHosts = new Set(allow.hosts);
  const allowedRanges = addressRanges(allow.cidrs);
  const permitted = (address: string) => allowedRanges.has(address) || !NON_PUBLIC.has(address);
  const refuse = (host: string, address: string) => {
    logger.warn({ host, address }, 'outgoing request refused');
    return new OutboundRefusedError(host, address);
  };

  // Resolves once, checks every answer, hands exactly those to the socket.
  const lookup: LookupFunction = (hostname, options, callback) => {
    dns.lookup(hostname, { ...options, all: true }, (err, answers) => {
      if (err) return callback(err, '', 0);
      for (const { address } of answers) {
        const normal = normalizeAddress(address) ?? address;
        if (!permitted(normal)) return callback(refuse(hostname, normal), '', 0);
      }
      if (options.all) return (callback as unknown as (e: null, a: dns.LookupAddress[]) => void)(null, answers);
      const first = answers[0];
      if (!first) return callback(Object.assign(new Error(`no address for ${hostname}`), { code: 'ENOTFOUND' }), '', 0);
      callback(null, first.address, first.family);
    });
  };
  const connect = buildConnector({ lookup });
  const plain = buildConnector({});
  const dispatcher = new Agent({
    connect: (options, callback) => {
      const host = options.hostname.toLowerCase();
      const literal = normalizeAddress(host);
      if (!allowedHosts.has(host) && literal !== undefined && !permitted(literal)) {
        callback(refuse(host, literal), null);
        return;
      }
      // An allow-listed name may resolve to anything; others are checked at lookup.
      return allowedHosts.has(host) ? plain(options, callback) : connect(options, callback);
    },
  });

  return (input, init) => {
    // oidc-provider passes its own dispatcher (a guard that only runs after
    // connecting); ours replaces it.
    const { dispatcher: _theirs, ...rest } = (init ?? {}) as RequestInit & { dispatcher?: unknown };
    return undiciFetch(input, { ...(rest as Parameters<typeof undiciFetch>[1]), dispatcher }) as unknown as Promise<Response>;
  };
}
