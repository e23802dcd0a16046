// npm run db:diff -- NAME
// Writes prisma/migrations/<timestamp>_NAME/migration.sql with the SQL that
// takes the existing migrations to prisma/schema.prisma. It applies the
// migrations to a scratch database on DIFF_DATABASE_URL (a PostgreSQL < 18:
// the schema engine's introspection does not know 18 yet), diffs, and drops
// the scratch database. Prints "no changes" when schema and migrations agree.
import { randomBytes } from 'node:crypto';
import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import pg from 'pg';
import { MIGRATIONS_DIR, migrate } from '../src/db/migrate.ts';
import { diffDatabaseToSchema, loadSchemaEngine } from './schema-engine.ts';

const name = process.argv[2];
if (!name || !/^[a-z0-9_]{1,60}$/.test(name)) {
  console.error('usage: npm run db:diff -- NAME   (lower-case letters, digits and _)');
  process.exit(2);
}
const server = process.env.DIFF_DATABASE_URL ?? 'postgresql://postgres@127.0.0.1:5432/postgres';
const scratch = `gh_diff_${randomBytes(4).toString('hex')}`;
const url = new URL(server);
url.pathname = `/${scratch}`;

const admin = new pg.Client({ connectionString: server });
await admin.connect();
await admin.query(`CREATE DATABASE ${scratch}`);
let code = 0;
try {
  await migrate(url.toString());
  const engine = await loadSchemaEngine(url.toString());
  const sql = await diffDatabaseToSchema(engine);
  engine.free();
  if (sql === '') {
    console.log('no changes: prisma/migrations already produce prisma/schema.prisma');
  } else {
    const stamp = new Date().toISOString().replace(/\D/g, '').slice(0, 14);
    const dir = path.join(MIGRATIONS_DIR, `${stamp}_${name}`);
    mkdirSync(dir);
    writeFileSync(path.join(dir, 'migration.sql'), sql.endsWith('\n') ? sql : `${sql}\n`);
    console.log(`wrote ${path.relative(process.cwd(), dir)}/migration.sql`);
  }
} catch (err) {
  console.error(`db:diff failed: ${(err as Error).message.split('\n')[0]}`);
  code = 1;
} finally {
  await admin.query(`DROP DATABASE IF EXISTS ${scratch} WITH (FORCE)`).catch(() => {});
  await admin.end();
}
process.exit(code);
