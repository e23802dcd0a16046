// `npm start` rebuilds dist/ only when the build's inputs changed
// (scripts/build-if-changed.js, its prestart): a restart with unchanged
// sources skips prisma generate and tsc. Run here on a scratch tree with a
// stand-in build command that records each build.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, utimesSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

const SCRIPT = fileURLToPath(new URL('../../scripts/build-if-changed.js', import.meta.url));
const pkg = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { scripts: Record<string, string> };

describe('build only when the sources changed', () => {
  let root: string;
  const builds = () => (existsSync(path.join(root, 'builds.log')) ? readFileSync(path.join(root, 'builds.log'), 'utf8').split('\n').filter(Boolean).length : 0);
  // the stand-in build: writes the output and counts itself
  const BUILD = `mkdir -p dist/cli dist/console && echo built > dist/cli/main.js && echo built > dist/console/index.html && echo build >> builds.log`;
  const start = (...extra: string[]) => {
    const r = spawnSync(process.execPath, [SCRIPT, '--root', root, '--build-command', BUILD, ...extra], { encoding: 'utf8', cwd: os.tmpdir() });
    expect(r.status, r.stderr).toBe(0);
    return r.stdout;
  };
  const write = (rel: string, text: string) => {
    mkdirSync(path.dirname(path.join(root, rel)), { recursive: true });
    writeFileSync(path.join(root, rel), text);
  };

  beforeAll(() => {
    root = mkdtempSync(path.join(os.tmpdir(), 'gatehouse-build-'));
    write('src/app.ts', 'export const a = 1;\n');
    write('src/generated/prisma/client.ts', '// generated\n');
    write('prisma/schema.prisma', 'model A { id Int @id }\n');
    write('tsconfig.json', '{}\n');
    write('package-lock.json', '{}\n');
  });
  afterAll(() => {
    rmSync(root, { recursive: true, force: true });
  });

  it('is what npm start runs first', () => {
    expect(pkg.scripts.prestart).toBe('node scripts/build-if-changed.js');
  });

  it('builds the first time, then not while nothing changed', () => {
    expect(start()).toMatch(/^build: building dist\//);
    expect(builds()).toBe(1);
    expect(start()).toMatch(/up to date/);
    expect(start()).toMatch(/up to date/);
    expect(builds()).toBe(1);
  });

  it('a touched file with the same content, or a regenerated client, does not rebuild', () => {
    const future = new Date(Date.now() + 60_000);
    utimesSync(path.join(root, 'src/app.ts'), future, future);
    write('src/generated/prisma/client.ts', '// generated again, differently\n');
    start();
    expect(builds()).toBe(1);
  });

  it('rebuilds when a source, the schema, the compiler settings or the lockfile change', () => {
    const cases: [string, string][] = [
      ['src/app.ts', 'export const a = 2;\n'],
      ['src/new/module.ts', 'export {};\n'],
      ['prisma/schema.prisma', 'model A { id Int @id\n name String }\n'],
      ['tsconfig.json', '{ "compilerOptions": {} }\n'],
      ['package-lock.json', '{ "lockfileVersion": 3 }\n'],
      // the admin console's sources (built by Vite into dist/console/)
      ['console/src/main.tsx', 'export const b = 1;\n'],
      ['console/src/main.tsx', 'export const b = 2;\n'],
    ];
    let n = builds();
    for (const [file, text] of cases) {
      write(file, text);
      expect(start(), file).toMatch(/sources changed.*rebuilding/);
      expect(builds(), file).toBe(++n);
      expect(start(), file).toMatch(/up to date/);
    }
  });

  it("rebuilds when dist/ is gone, or the console's page is, and on --force", () => {
    let n = builds();
    rmSync(path.join(root, 'dist'), { recursive: true, force: true });
    start();
    expect(builds()).toBe(++n);
    rmSync(path.join(root, 'dist', 'console'), { recursive: true, force: true });
    start();
    expect(builds()).toBe(++n);
    expect(start()).toMatch(/up to date/);
    start('--force');
    expect(builds()).toBe(n + 1);
  });

  it('a failing build fails the start and leaves no stamp', () => {
    write('src/app.ts', 'export const a = 3;\n');
    const r = spawnSync(process.execPath, [SCRIPT, '--root', root, '--build-command', 'exit 3'], { encoding: 'utf8' });
    expect(r.status).toBe(3);
    expect(r.stderr).toContain("build: 'exit 3' failed (exit 3)");
    expect(existsSync(path.join(root, 'dist', '.build-stamp'))).toBe(false);
  });
});
