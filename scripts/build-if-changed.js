#!/usr/bin/env node
// `npm start`'s prestart: builds dist/ (prisma generate + tsc) only when its
// inputs changed since the last build, so that a restart with unchanged
// sources starts at once. The inputs' contents (not their mtimes: a checkout
// touches those) are hashed and compared with the stamp the last build left
// in dist/. Plain JavaScript: it runs before anything is compiled.
//
//   node scripts/build-if-changed.js [--root DIR] [--build-command CMD] [--force]
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';

const { values } = parseArgs({
  options: { root: { type: 'string' }, 'build-command': { type: 'string' }, force: { type: 'boolean' } },
});
const root = path.resolve(values.root ?? path.join(path.dirname(fileURLToPath(import.meta.url)), '..'));
const buildCommand = values['build-command'] ?? 'npm run build';

/** What the build reads: the sources (not the generated client: an output), the admin console's sources, the schema, the compiler and package settings. */
const INPUT_FILES = ['prisma/schema.prisma', 'prisma.config.ts', 'tsconfig.json', 'tsconfig.build.json', 'package.json', 'package-lock.json'];
const INPUT_DIRS = ['src', 'console'];
const SKIP = new Set(['src/generated']);
const STAMP = path.join(root, 'dist', '.build-stamp');
// the server's entry point, and the admin console's page when the tree has the console
const OUTPUTS = [path.join(root, 'dist', 'cli', 'main.js')];
if (existsSync(path.join(root, 'console'))) OUTPUTS.push(path.join(root, 'dist', 'console', 'index.html'));

function walk(rel, out) {
  if (SKIP.has(rel)) return;
  for (const entry of readdirSync(path.join(root, rel), { withFileTypes: true }).sort((a, b) => (a.name < b.name ? -1 : 1))) {
    const child = `${rel}/${entry.name}`;
    if (entry.isDirectory()) walk(child, out);
    else if (entry.isFile()) out.push(child);
  }
}

function inputsHash() {
  const files = [...INPUT_FILES.filter((f) => existsSync(path.join(root, f)))];
  for (const dir of INPUT_DIRS) if (existsSync(path.join(root, dir))) walk(dir, files);
  const h = createHash('sha256');
  for (const f of files) {
    h.update(`${f}\0`);
    h.update(readFileSync(path.join(root, f)));
    h.update('\0');
  }
  return h.digest('hex');
}

const hash = inputsHash();
let stamp;
try {
  stamp = readFileSync(STAMP, 'utf8').trim();
} catch {
  // never built, or built before stamps existed
}
if (!values.force && stamp === hash && OUTPUTS.every((f) => existsSync(f))) {
  console.log('build: dist/ is up to date with the sources; not rebuilding');
  process.exit(0);
}

console.log(stamp ? 'build: sources changed since the last build; rebuilding dist/' : 'build: building dist/');
// A clean build: no compiled module of a deleted source lingers.
rmSync(path.join(root, 'dist'), { recursive: true, force: true });
const r = spawnSync(buildCommand, { cwd: root, stdio: 'inherit', shell: true });
if (r.status !== 0) {
  console.error(`build: '${buildCommand}' failed${r.status === null ? '' : ` (exit ${r.status})`}`);
  process.exit(r.status || 1);
}
writeFileSync(STAMP, `${hash}\n`);
