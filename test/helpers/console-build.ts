// The admin console's bundle (dist/console/), built by Vite from console/ when
// it is missing or older than its sources, so that `npm test` on a clean clone
// serves the real console. Called once per run by the global setup.
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const OUT = path.join(ROOT, 'dist', 'console');
const STAMP = path.join(OUT, '.sources');

function sourcesHash(): string {
  const h = createHash('sha256');
  const walk = (rel: string) => {
    for (const e of readdirSync(path.join(ROOT, rel), { withFileTypes: true }).sort((a, b) => (a.name < b.name ? -1 : 1))) {
      const child = `${rel}/${e.name}`;
      if (e.isDirectory()) walk(child);
      else if (e.isFile()) h.update(`${child}\0`).update(readFileSync(path.join(ROOT, child))).update('\0');
    }
  };
  walk('console');
  h.update(readFileSync(path.join(ROOT, 'package-lock.json')));
  return h.digest('hex');
}

export function ensureConsoleBuilt(): void {
  const hash = sourcesHash();
  if (existsSync(path.join(OUT, 'index.html')) && existsSync(STAMP) && readFileSync(STAMP, 'utf8').trim() === hash) return;
  const vite = path.join(ROOT, 'node_modules', 'vite', 'bin', 'vite.js');
  const r = spawnSync(process.execPath, [vite, 'build', '--config', path.join(ROOT, 'console', 'vite.config.ts')], { cwd: ROOT, encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`building the admin console failed:\n${r.stdout}\n${r.stderr}`);
  writeFileSync(STAMP, `${hash}\n`);
}
