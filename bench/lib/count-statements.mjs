// Preloaded into the Gatehouse processes by the bench (node --import), never
// by Gatehouse itself: counts the SQL statements each process sends through
// pg (Prisma runs on the same pg pool), BEGINs among them, and the time spent
// waiting for answers, and writes the totals to
// $BENCH_STATEMENTS_DIR/<pid>.json every 200 ms (and at exit). The bench reads
// them before and after a measured run (bench/lib/dbcost.ts).
import { mkdirSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { setInterval } from 'node:timers';

const dir = process.env.BENCH_STATEMENTS_DIR;
if (dir) {
  const require = createRequire(path.join(process.cwd(), 'package.json'));
  const pg = require('pg');
  const counts = { statements: 0, transactions: 0, waitMs: 0 };
  let dirty = true;
  const proto = pg.Client.prototype;
  const original = proto.query;
  proto.query = function countedQuery(...args) {
    const first = args[0];
    const text = typeof first === 'string' ? first : typeof first?.text === 'string' ? first.text : '';
    counts.statements++;
    if (/^\s*(BEGIN|START TRANSACTION)\b/i.test(text)) counts.transactions++;
    dirty = true;
    const t0 = performance.now();
    const done = () => {
      counts.waitMs += performance.now() - t0;
    };
    const last = args[args.length - 1];
    if (typeof last === 'function') {
      args[args.length - 1] = (err, res) => {
        done();
        last(err, res);
      };
      return original.apply(this, args);
    }
    const out = original.apply(this, args);
    if (out && typeof out.then === 'function') out.then(done, done);
    return out;
  };
  mkdirSync(dir, { recursive: true });
  const file = path.join(dir, `${process.pid}.json`);
  const flush = () => {
    if (!dirty) return;
    dirty = false;
    try {
      writeFileSync(file, JSON.stringify(counts));
    } catch {
      /* the bench may have removed the directory */
    }
  };
  setInterval(flush, 200).unref();
  process.on('exit', flush);
}
