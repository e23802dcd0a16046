// The client-address rule of TRUST_PROXY case by case (the app-level proof
// is edge-trust-proxy.test.ts): socket peers in either family, IPv6 proxies,
// chains shorter or longer than the hop count, and junk at every position.
import { describe, expect, it } from 'vitest';
import { clientAddressResolver, parseTrustProxy } from '../../src/http/client-address.ts';

const resolve = (trust: string, peer: string, xff?: string) => clientAddressResolver(parseTrustProxy(trust))(peer, xff);

describe('client address', () => {
  it('no trust: the socket peer, normalised; the header is ignored', () => {
    expect(resolve('false', '::ffff:10.0.0.1', '203.0.113.1')).toBe('10.0.0.1');
    expect(resolve('0', '2001:DB8::1', '203.0.113.1')).toBe('2001:db8::1');
  });

  it('hop counts', () => {
    const xff = '198.51.100.1, 203.0.113.2, 10.0.0.3';
    expect(resolve('1', '10.0.0.9', xff)).toBe('10.0.0.3');
    expect(resolve('2', '10.0.0.9', xff)).toBe('203.0.113.2');
    expect(resolve('3', '10.0.0.9', xff)).toBe('198.51.100.1');
    expect(resolve('5', '10.0.0.9', xff)).toBe('198.51.100.1'); // fewer entries: the leftmost
    expect(resolve('1', '10.0.0.9')).toBe('10.0.0.9'); // no header: a direct connection
    expect(resolve('1', '10.0.0.9', '')).toBe('10.0.0.9');
    expect(resolve('1', '10.0.0.9', 'a, b, 203.0.113.5:80')).toBe('10.0.0.9');
    expect(resolve('2', '10.0.0.9', '203.0.113.5,,10.0.0.3')).toBe('10.0.0.9'); // empty entry
  });

  it('CIDRs, IPv6 proxies and an IPv4-mapped peer', () => {
    const trust = '10.0.0.0/8,fd00::/8';
    expect(resolve(trust, '::ffff:10.1.1.1', '2001:db8::5, fd00::2')).toBe('2001:db8::5');
    expect(resolve(trust, 'fd00::1', '[2001:db8::6]')).toBe('2001:db8::6');
    expect(resolve(trust, 'fd00::1%eth0', '203.0.113.7')).toBe('203.0.113.7');
    expect(resolve(trust, '2001:db8::99', '203.0.113.7')).toBe('2001:db8::99'); // untrusted peer
    expect(resolve(trust, '10.0.0.1', '203.0.113.8, 10.0.0.2, fd00::3')).toBe('203.0.113.8');
    expect(resolve(trust, '10.0.0.1', 'evil, 203.0.113.8, 10.0.0.2')).toBe('203.0.113.8'); // junk left of the client is never read
    expect(resolve(trust, '10.0.0.1', '203.0.113.8, evil, 10.0.0.2')).toBe('10.0.0.1');
    expect(resolve('10.0.0.0/8', '10.0.0.1', '::ffff:10.0.0.5, 10.0.0.2')).toBe('10.0.0.5'); // all trusted: leftmost
  });

  it('a peer that is not an IP literal (a unix socket) never trusts the header', () => {
    expect(resolve('10.0.0.0/8', '', '203.0.113.9')).toBe('');
  });
});
