// IP literals and CIDR ranges, for TRUST_PROXY (which X-Forwarded-For entry
// is the client) and OUTBOUND_ALLOWLIST (which private addresses outgoing
// requests may reach). Only strict IP literals count (node:net isIP): a
// header or DNS answer that is anything else is never taken for an address.
import { BlockList, isIP, isIPv4 } from 'node:net';

const MAPPED = /^::ffff:(\d{1,3}(?:\.\d{1,3}){3})$/i;
const MAPPED_HEX = /^::ffff:([0-9a-f]{1,4}):([0-9a-f]{1,4})$/;

/**
 * The canonical form of an IP literal, or undefined when `raw` is not one.
 * Brackets and an IPv6 zone are stripped, IPv4-mapped IPv6 becomes IPv4 and
 * IPv6 is written in its shortest lower-case form, so that one address has
 * one spelling (throttle keys, audit records, range checks).
 */
export function normalizeAddress(raw: string | undefined): string | undefined {
  if (!raw) return undefined;
  let a = raw.trim();
  if (isIPv4(a)) return a; // the common case, first
  if (a.startsWith('[') && a.endsWith(']')) a = a.slice(1, -1);
  const zone = a.indexOf('%');
  if (zone > 0 && a.includes(':')) a = a.slice(0, zone);
  const family = isIP(a);
  if (family === 4) return a;
  if (family !== 6) return undefined;
  const dotted = MAPPED.exec(a)?.[1];
  if (dotted !== undefined && isIPv4(dotted)) return dotted;
  // WHATWG URL serialises IPv6 hosts canonically (RFC 5952).
  const canonical = new URL(`http://[${a}]/`).hostname.slice(1, -1);
  const hex = MAPPED_HEX.exec(canonical);
  if (hex) {
    const hi = parseInt(hex[1]!, 16);
    const lo = parseInt(hex[2]!, 16);
    return `${hi >> 8}.${hi & 0xff}.${lo >> 8}.${lo & 0xff}`;
  }
  return canonical;
}

export function familyOf(address: string): 'ipv4' | 'ipv6' {
  return isIPv4(address) ? 'ipv4' : 'ipv6';
}

export interface Cidr {
  address: string;
  prefix: number;
  family: 'ipv4' | 'ipv6';
}

/**
 * Parses `10.0.0.0/8`, `fd00::/8`, `[::1]/128` or a bare address (a single
 * host). IPv4-mapped IPv6 ranges become IPv4 ranges (addresses are compared
 * in normalised form). Undefined when `entry` is not a CIDR.
 */
export function parseCidr(entry: string): Cidr | undefined {
  const m = /^([^/]+?)(?:\/(\d{1,3}))?$/.exec(entry.trim());
  if (!m) return undefined;
  const literal = m[1]!.startsWith('[') && m[1]!.endsWith(']') ? m[1]!.slice(1, -1) : m[1]!;
  const given = literal.includes('%') ? 0 : isIP(literal); // a range has no zone
  if (given === 0) return undefined;
  const address = normalizeAddress(literal)!;
  const family = familyOf(address);
  let prefix = m[2] === undefined ? (given === 4 ? 32 : 128) : Number(m[2]);
  if (prefix > (given === 4 ? 32 : 128)) return undefined;
  if (given === 6 && family === 'ipv4') {
    if (prefix < 96) return undefined;
    prefix -= 96;
  }
  return { address, prefix, family };
}

export function formatCidr(c: Cidr): string {
  return `${c.address}/${c.prefix}`;
}

/** A set of ranges that normalised addresses are checked against. */
export interface AddressRanges {
  has(address: string): boolean;
}

/** `cidrs` as written by formatCidr (the config's normalised form). */
export function addressRanges(cidrs: readonly (string | Cidr)[]): AddressRanges {
  const list = new BlockList();
  for (const entry of cidrs) {
    const c = typeof entry === 'string' ? parseCidr(entry) : entry;
    if (!c) throw new Error(`not a CIDR: ${String(entry)}`);
    list.addSubnet(c.address, c.prefix, c.family);
  }
  return { has: (address) => list.check(address, familyOf(address)) };
}

/**
 * Addresses that are not on the public internet: IANA's special-purpose
 * registries (loopback, private, shared, link-local, unique-local,
 * documentation, benchmarking, multicast, reserved, NAT64/6to4 and other
 * translation prefixes that can reach IPv4 ones).
 */
export const NON_PUBLIC = addressRanges([
  '0.0.0.0/8',
  '10.0.0.0/8',
  '100.64.0.0/10',
  '127.0.0.0/8',
  '169.254.0.0/16',
  '172.16.0.0/12',
  '192.0.0.0/24',
  '192.0.2.0/24',
  '192.31.196.0/24',
  '192.52.193.0/24',
  '192.88.99.0/24',
  '192.168.0.0/16',
  '192.175.48.0/24',
  '198.18.0.0/15',
  '198.51.100.0/24',
  '203.0.113.0/24',
  '224.0.0.0/4',
  '240.0.0.0/4',
  '::/128',
  '::1/128',
  '::/96', // IPv4-compatible (deprecated)
  '64:ff9b::/96',
  '64:ff9b:1::/48',
  '100::/64',
  '2001::/23',
  '2001:db8::/32',
  '2002::/16',
  '2620:4f:8000::/48',
  '3fff::/20',
  '5f00::/16',
  'fc00::/7',
  'fe80::/10',
  'fec0::/10',
  'ff00::/8',
]);

/** OUTBOUND_ALLOWLIST, parsed: what outgoing requests may reach although it is not public. */
export interface OutboundAllowlist {
  /** lower-case host names, exact match */
  hosts: string[];
  /** normalised CIDRs (formatCidr) */
  cidrs: string[];
}

const HOSTNAME = /^(?=.{1,253}$)[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?(?:\.[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?)*$/;

/**
 * Parses comma-separated host names and CIDRs. Throws an Error whose message
 * completes "invalid OUTBOUND_ALLOWLIST: …".
 */
export function parseOutboundAllowlist(raw: string): OutboundAllowlist {
  const out: OutboundAllowlist = { hosts: [], cidrs: [] };
  for (const entry of raw.split(',').map((s) => s.trim()).filter(Boolean)) {
    const cidr = parseCidr(entry);
    if (cidr) {
      out.cidrs.push(formatCidr(cidr));
      continue;
    }
    const host = entry.toLowerCase().replace(/\.$/, '');
    if (!HOSTNAME.test(host)) throw new Error(`"${entry.slice(0, 64)}" is neither a host name nor a CIDR (e.g. backchannel.internal or 10.0.0.0/8)`);
    out.hosts.push(host);
  }
  return out;
}
