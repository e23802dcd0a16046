// The five-minute guide's service (invoices.ts), run as its own process
// against a real Gatehouse on 127.0.0.1: what the guide promises holds.
import { spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestDatabase, type TestDatabase } from '../../test/helpers/db.ts';
import { testEnv } from '../../test/helpers/env.ts';
import { callApi, clientCredentials } from '../shared/http.ts';
import { startExample, type RunningExample } from '../shared/runner.ts';

const SERVICE = fileURLToPath(new URL('./invoices.ts', import.meta.url));

describe('protecting a service in five minutes (docs/security-model.md)', () => {
  let db: TestDatabase;
  let ex: RunningExample;
  let child: ChildProcess | undefined;
  let url: string;

  beforeAll(async () => {
    db = await createTestDatabase();
    const env = testEnv(db.url);
    ex = await startExample(
      { name: 'protect-a-service', configFile: 'examples/protect-a-service/gatehouse.yaml', gatehousePort: 0, users: [], services: [] },
      { databaseUrl: db.url, baseEnv: env, dataDir: env.DATA_DIR! },
    );
    const proc = spawn(process.execPath, ['--import', 'tsx', SERVICE], { env: { ...process.env, ISSUER: ex.issuer, PORT: '0' }, stdio: ['ignore', 'pipe', 'pipe'] });
    child = proc;
    url = await new Promise<string>((resolve, reject) => {
      let out = '';
      const timer = setTimeout(() => reject(new Error(`the service did not start: ${out}`)), 20_000);
      proc.stdout.on('data', (chunk: Buffer) => {
        out += chunk.toString();
        const m = /listening on (http:\/\/\S+)/.exec(out);
        if (m) {
          clearTimeout(timer);
          resolve(m[1]!);
        }
      });
      proc.stderr.on('data', (chunk: Buffer) => void (out += chunk.toString()));
      proc.once('exit', (code) => {
        clearTimeout(timer);
        reject(new Error(`the service exited (${code}): ${out}`));
      });
    });
  });
  afterAll(async () => {
    if (child && child.exitCode === null) {
      const exited = new Promise((r) => child!.once('exit', r));
      child.kill('SIGTERM');
      await Promise.race([exited, new Promise((r) => setTimeout(r, 5_000))]);
      if (child.exitCode === null) child.kill('SIGKILL');
    }
    await ex?.close();
    await db?.drop();
  });

  it('a token for the API with the scope gets in; without the scope 403; without a token or with a forged one 401', async () => {
    const token = await clientCredentials(ex.issuer, { id: 'billing-report', secret: ex.secrets['billing-report']! }, 'https://invoices.example.com');
    expect(token.body.scope).toBe('invoices:read');
    const ok = await callApi(`${url}/invoices`, { token: token.body.access_token! });
    expect(ok).toMatchObject({ status: 200, body: { invoices: [{ id: 'inv-1' }] } });

    const write = await callApi(`${url}/invoices`, { token: token.body.access_token!, body: {} });
    expect(write.status).toBe(403);
    expect(write.challenge).toBe('Bearer realm="invoices", error="insufficient_scope", error_description="the token lacks the scope invoices:write", scope="invoices:write"');

    const none = await callApi(`${url}/invoices`);
    expect(none).toMatchObject({ status: 401, challenge: 'Bearer realm="invoices"' });
    const forged = await callApi(`${url}/invoices`, { token: 'eyJhbGciOiJub25lIn0.eyJzdWIiOiJ4In0.' });
    expect(forged.status).toBe(401);
    expect(forged.challenge).toMatch(/error="invalid_token"/);
  });
});
