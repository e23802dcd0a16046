// `npm run example:<name> [-- --walkthrough]`: starts the example on
// 127.0.0.1 and prints its URLs; with --walkthrough, runs the scripted
// walk-through against it, prints one line per check, and stops.
import type { LogEntry } from './service.ts';
import { Report } from './report.ts';
import { startExample, type ExampleSpec, type RunningExample } from './runner.ts';

export type Walkthrough = (ex: RunningExample, logs: LogEntry[], report: Report) => Promise<void>;

/** `[payments] POST /charges 201 sub=… client_id=orders-service act=orders-service scope="payments:charge"` */
export function formatLog(e: LogEntry): string {
  const { time: _time, service, event, ...rest } = e;
  if (event === 'request') {
    const { method, path, status, ms, ...who } = rest;
    const fields = Object.entries(who).map(([k, v]) => `${k}=${typeof v === 'string' && /\s/.test(v) ? JSON.stringify(v) : String(v)}`);
    return `[${service}] ${method} ${path} ${status} ${ms}ms ${fields.join(' ')}`.trimEnd();
  }
  const { message, ...fields } = rest;
  return `[${service}] ${event}: ${message ?? JSON.stringify(fields)}`;
}

export async function runExampleMain(spec: ExampleSpec, walkthrough: Walkthrough): Promise<void> {
  const walk = process.argv.includes('--walkthrough');
  const logs: LogEntry[] = [];
  const ex = await startExample(spec, {
    fixedPorts: true,
    log: (e) => {
      logs.push(e);
      if (logs.length > 10_000) logs.splice(0, 5_000);
      if (!walk) console.log(formatLog(e));
    },
    progress: (line) => console.log(line),
  });
  console.log('');
  console.log(`The ${spec.name} example is running on 127.0.0.1:`);
  for (const [name, url] of Object.entries(ex.urls)) console.log(`  ${name.padEnd(16)} ${url}`);
  console.log('Demo people (sign in with these):');
  for (const u of Object.values(ex.users)) console.log(`  ${u.email.padEnd(28)} password ${u.password}   sub ${u.id}`);

  if (walk) {
    const report = new Report();
    let code = 1;
    try {
      await walkthrough(ex, logs, report);
      console.log('');
      console.log(report.summary());
      code = report.failures === 0 ? 0 : 1;
    } catch (err) {
      console.error(`walk-through stopped: ${(err as Error).message}`);
    } finally {
      await ex.close();
    }
    process.exit(code);
  }

  console.log('Client secrets of this run (development only; rotated at every later start):');
  for (const [id, secret] of Object.entries(ex.secrets)) console.log(`  ${id.padEnd(20)} ${secret}`);
  console.log('Audit lines of the services follow. Ctrl-C stops everything.');
  const stop = async () => {
    console.log('stopping …');
    await ex.close();
    process.exit(0);
  };
  process.once('SIGINT', () => void stop());
  process.once('SIGTERM', () => void stop());
}
