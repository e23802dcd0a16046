// Fenced code blocks of a Markdown document, and a shell to run them in, for
// tests that run a document's examples as written (README.md, docs/ recipes).
import { spawn } from 'node:child_process';
import path from 'node:path';
import { CLI, REPO_ROOT } from '../server/process.ts';

const TSX = path.join(REPO_ROOT, 'node_modules', '.bin', 'tsx');

export interface Block {
  lang: string;
  code: string;
  line: number;
  /** why it is not run, when marked so */
  skip?: string;
}

/** The fenced code blocks of a Markdown text (indented ones too, as in lists). */
export function codeBlocks(markdown: string): Block[] {
  const lines = markdown.split('\n');
  const blocks: Block[] = [];
  for (let i = 0; i < lines.length; i++) {
    const open = /^( *)```(\S*)\s*$/.exec(lines[i]!);
    if (!open) continue;
    const indent = open[1]!.length;
    const body: string[] = [];
    let j = i + 1;
    while (j < lines.length && lines[j]!.trim() !== '```') body.push(lines[j++]!.slice(indent));
    let k = i - 1;
    while (k >= 0 && lines[k]!.trim() === '') k--;
    const skip = k >= 0 ? /<!-- not run by test\/docs\/readme\.test\.ts: (.+?) -->/.exec(lines[k]!)?.[1] : undefined;
    blocks.push({ lang: open[2]!, code: body.join('\n'), line: i + 1, ...(skip ? { skip } : {}) });
    i = j;
  }
  return blocks;
}

/**
 * Runs a bash script (`set -euo pipefail`) with `npx gatehouse` as this
 * checkout's CLI (its TypeScript sources, never a possibly stale dist/), in
 * `cwd` with only PATH, HOME=cwd and `env`. Asynchronous: the Gatehouse that
 * answers the script's curls may run in the calling process.
 */
export function runShell(script: string, cwd: string, env: NodeJS.ProcessEnv, timeoutMs = 300_000): Promise<{ status: number | null; stdout: string; stderr: string }> {
  const preamble = `set -euo pipefail\nnpx() { if [ "$1" = gatehouse ]; then shift; "${TSX}" "${CLI}" "$@"; else command npx "$@"; fi; }\n`;
  return new Promise((resolve) => {
    const child = spawn('bash', ['-c', preamble + script], { cwd, env: { PATH: process.env.PATH, HOME: cwd, ...env } });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
    child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.on('close', (status) => {
      clearTimeout(timer);
      resolve({ status, stdout, stderr });
    });
  });
}
