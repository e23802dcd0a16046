// The README's shell examples, run as written, in order, in one shell, against
// a fresh database and a listening Gatehouse: they cannot drift from what the
// product does. Only a block marked just above its fence with
//   <!-- not run by test/docs/readme.test.ts: REASON -->
// is left out (installing, running the suite, an external database).
import { createServer, type Server } from 'node:http';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestApp, type TestApp } from '../helpers/app.ts';
import { TEST_COOKIE_SECRET, TEST_KEK } from '../helpers/env.ts';
import { codeBlocks, runShell } from '../helpers/markdown.ts';
import { freePort, REPO_ROOT } from '../server/process.ts';

const README = readFileSync(path.join(REPO_ROOT, 'README.md'), 'utf8');

describe('README examples', () => {
  let t: TestApp;
  let server: Server;
  let port: number;
  let cwd: string;

  beforeAll(async () => {
    port = await freePort();
    t = await createTestApp({ env: { ISSUER: `http://localhost:${port}` } });
    server = createServer(t.gatehouse.app.callback());
    await new Promise<void>((resolve) => server.listen(port, '127.0.0.1', resolve));
    cwd = mkdtempSync(path.join(os.tmpdir(), 'gatehouse-readme-'));
  });
  afterAll(async () => {
    await new Promise<void>((resolve) => (server ? server.close(() => resolve()) : resolve()));
    await t?.close();
    if (cwd) rmSync(cwd, { recursive: true, force: true });
  });

  it('every shell block is run, or says why not', () => {
    const shell = codeBlocks(README).filter((b) => b.lang === 'sh');
    expect(shell.length).toBeGreaterThan(5);
    for (const b of codeBlocks(README)) expect(['sh', 'ts', 'yaml', 'json', ''], `block at line ${b.line}`).toContain(b.lang);
    // a YAML or JSON example must be part of a command (e.g. a heredoc), so that it is run too
    expect(codeBlocks(README).filter((b) => b.lang === 'yaml' || b.lang === 'json').map((b) => b.line)).toEqual([]);
    expect(shell.filter((b) => b.skip).map((b) => b.skip)).toEqual([
      expect.stringMatching(/install/),
      expect.stringMatching(/suite/),
      expect.stringMatching(/external PostgreSQL/),
    ]);
  });

  it('run as written, in order, in one shell, each block succeeding', async () => {
    const blocks = codeBlocks(README).filter((b) => b.lang === 'sh' && !b.skip);
    const script = blocks
      .map((b, i) => `echo "@@block ${i}@@"\n${b.code.replaceAll('localhost:3000', `localhost:${port}`)}\necho`)
      .join('\n');
    const r = await runShell(script, cwd, {
      DATABASE_URL: t.database.url,
      COOKIE_SECRETS: TEST_COOKIE_SECRET,
      KEY_ENCRYPTION_KEY: TEST_KEK,
      DATA_DIR: path.join(cwd, '.data'),
      ISSUER: `http://localhost:${port}`,
    });
    const outputs = r.stdout.split(/^@@block \d+@@$/m).slice(1);
    const failedAt = blocks[outputs.length - 1];
    expect(r.status, `block at README.md line ${failedAt?.line}:\n${failedAt?.code}\nstdout:\n${outputs.at(-1)}\nstderr:\n${r.stderr}`).toBe(0);
    expect(outputs).toHaveLength(blocks.length);
    expect(r.stderr).not.toMatch(/^gatehouse: /m);
    // curl -s exits 0 on an HTTP error: no answer may be an OAuth or problem error
    for (const [i, out] of outputs.entries()) expect(out, `block at README.md line ${blocks[i]!.line}`).not.toMatch(/"error"\s*:|"type"\s*:\s*"urn:gatehouse:problem/);
    const outputOf = (needle: string) => outputs[blocks.findIndex((b) => b.code.includes(needle))] ?? '';
    const checks = outputOf('/.well-known/openid-configuration');
    expect(checks).toMatch(/^\s*\{"/); // discovery's first 300 characters
    expect(checks).toContain('"keys":[');
    expect(checks).toContain('{"status":"ok"}');
    expect(checks).toMatch(/"status":"ready"/);
    expect(outputOf('grant_type=client_credentials')).toMatch(/"access_token":"eyJ/);
    expect(outputOf('--dry-run')).toMatch(/dry run: .*nothing changed[\s\S]*applied: /);
    expect(outputOf('/admin/v1/clients')).toMatch(/"items":\[/);
  }, 360_000);
});
