// Where `gatehouse serve` listens. Outside production it runs with generated
// development secrets, so it must not be reachable from the network: it
// listens on 127.0.0.1 unless HOST says otherwise. In production the default
// is every interface (0.0.0.0). Checked on a real process: on Linux every
// 127.x.y.z reaches the loopback interface, but only a socket bound to
// 0.0.0.0 (or to that very address) accepts a connection to 127.0.0.2.
import { randomBytes } from 'node:crypto';
import net from 'node:net';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { createTestDatabase, type TestDatabase } from '../helpers/db.ts';
import { testEnv } from '../helpers/env.ts';
import { baseEnv, freePort, killAll, spawnGatehouse } from '../server/process.ts';

const BANNER = /^Gatehouse is running\. Issuer: /;

function accepts(host: string, port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = net.connect({ host, port });
    s.once('connect', () => {
      s.destroy();
      resolve(true);
    });
    s.once('error', () => resolve(false));
  });
}

let database: TestDatabase | undefined;
afterEach(async () => {
  await killAll();
});
afterAll(async () => {
  await killAll();
  await database?.drop();
});

/** `gatehouse serve` with `env` and no HOST unless `env` has one; resolves with its port and output once it is serving. */
async function serve(env: Record<string, string | undefined>): Promise<{ port: number; stdout: () => string }> {
  database ??= await createTestDatabase();
  const port = await freePort();
  const full = baseEnv({ ...testEnv(database.url), LOG_LEVEL: 'warn', PORT: String(port), ...env });
  if (env.HOST === undefined) delete full.HOST; // baseEnv pins 127.0.0.1 for the other tests
  const proc = spawnGatehouse(['serve'], full);
  await proc.waitForStdout(BANNER);
  await proc.waitForStdout(/^ {2}listening: /);
  return { port, stdout: proc.stdout };
}

describe('listen address', () => {
  it('outside production: 127.0.0.1 only', async () => {
    const { port, stdout } = await serve({});
    expect(await accepts('127.0.0.1', port)).toBe(true);
    expect(await accepts('127.0.0.2', port)).toBe(false);
    expect(stdout()).toContain(`  listening: 127.0.0.1:${port} (this machine only; set HOST to change)`);
  });

  it('HOST overrides it', async () => {
    const { port } = await serve({ HOST: '127.0.0.2' });
    expect(await accepts('127.0.0.2', port)).toBe(true);
    expect(await accepts('127.0.0.1', port)).toBe(false);
  });

  it('NODE_ENV=production: every interface', async () => {
    const { port, stdout } = await serve({
      NODE_ENV: 'production',
      ISSUER: 'https://id.example.com',
      // testEnv's cookie secret and key are random: production accepts them
      METRICS_TOKEN: randomBytes(32).toString('hex'),
    });
    expect(await accepts('127.0.0.1', port)).toBe(true);
    expect(await accepts('127.0.0.2', port)).toBe(true);
    expect(stdout()).toContain(`  listening: 0.0.0.0:${port} (reachable from the network)`);
  });
});
