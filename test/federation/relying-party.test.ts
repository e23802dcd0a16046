// The relying party on its own against real servers on 127.0.0.1: what
// counts as an upstream outage (refused, timed out, 5xx, not allow-listed)
// and that its requests go through the outbound guard.
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openDb, type DbHandle } from '../../src/db/client.ts';
import { RelyingParty, UpstreamUnavailableError } from '../../src/federation/relying-party.ts';
import { createIdp, getIdpRecord } from '../../src/federation/store.ts';
import { guardedFetch } from '../../src/http/outbound.ts';
import { createLogger } from '../../src/logging/logger.ts';
import { createTestDatabase, type TestDatabase } from '../helpers/db.ts';
import { TEST_KEK } from '../helpers/env.ts';

const kek = Buffer.from(TEST_KEK, 'base64');
const logger = createLogger('silent');
const loopback = { hosts: [], cidrs: ['127.0.0.0/8'] };

async function serve(handler: http.RequestListener): Promise<{ url: string; server: http.Server }> {
  const server = http.createServer(handler);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, server };
}
const close = (s: http.Server) => {
  s.closeAllConnections();
  return new Promise<void>((resolve) => s.close(() => resolve()));
};

describe('relying party: upstream outages', () => {
  let tdb: TestDatabase;
  let h: DbHandle;
  const rp = (allow = loopback, timeoutSeconds = 1) => new RelyingParty({ kek, issuer: 'http://localhost:3000', fetch: guardedFetch(allow, logger), logger, timeoutSeconds });
  const idpAt = async (name: string, issuer: string) => getIdpRecord(h.prisma, (await createIdp(h.prisma, kek, { name, issuer, clientId: 'c', clientSecret: 's' })).id);

  beforeAll(async () => {
    tdb = await createTestDatabase();
    h = openDb({ url: tdb.url, poolSize: 2 });
  });
  afterAll(async () => {
    await h?.close();
    await tdb?.drop();
  });

  it('a refused connection, a provider that never answers, and a 5xx are each "unavailable"', async () => {
    const gone = await serve(() => {});
    const goneUrl = gone.url;
    await close(gone.server);
    const refused = rp().begin(await idpAt('Refused', goneUrl));
    await expect(refused).rejects.toBeInstanceOf(UpstreamUnavailableError);
    await expect(refused).rejects.toMatchObject({ reason: 'ECONNREFUSED' });

    const hanging = await serve(() => {}); // accepts, never answers
    try {
      await expect(rp().begin(await idpAt('Hanging', hanging.url))).rejects.toMatchObject({ name: 'UpstreamUnavailableError', reason: expect.stringMatching(/timed out|Timeout/i) });
    } finally {
      await close(hanging.server);
    }

    const failing = await serve((_req, res) => {
      res.writeHead(502);
      res.end('bad gateway');
    });
    try {
      await expect(rp().begin(await idpAt('Failing', failing.url))).rejects.toBeInstanceOf(UpstreamUnavailableError);
    } finally {
      await close(failing.server);
    }
  });

  it('the outbound guard applies: a loopback provider not allow-listed is never contacted', async () => {
    let hits = 0;
    const s = await serve((_req, res) => {
      hits++;
      res.end('{}');
    });
    try {
      await expect(rp({ hosts: [], cidrs: [] }).begin(await idpAt('Private', s.url))).rejects.toMatchObject({ reason: 'refused by OUTBOUND_ALLOWLIST' });
      expect(hits).toBe(0);
    } finally {
      await close(s.server);
    }
  });
});
