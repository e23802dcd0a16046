// Loads Prisma's schema engine (WebAssembly build) for development tooling:
// generating migration SQL and checking for drift. Node 20 cannot import the
// package's `.wasm` entry, so the module is instantiated here by hand.
import { readFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import path from 'node:path';
import { PrismaPg } from '@prisma/adapter-pg';
import { bindMigrationAwareSqlAdapterFactory } from '@prisma/driver-adapter-utils';
import pg from 'pg';

// adapter-pg has no mapping for PostgreSQL's internal "char" type (OID 18),
// which the engine's introspection queries return; report it as text (OID 25).
class CharAsTextClient extends pg.Client {
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  override query(...args: any[]): any {
    const cb = typeof args[args.length - 1] === 'function' ? (args.pop() as (e: unknown, r?: pg.QueryResult) => void) : undefined;
    const fix = (res: pg.QueryResult) => {
      for (const f of res.fields ?? []) if (f.dataTypeID === 18) f.dataTypeID = 25;
      return res;
    };
    // eslint-disable-next-line @typescript-eslint/no-explicit-any
    const out = (super.query as (...a: any[]) => Promise<pg.QueryResult>)(...args).then(fix);
    if (!cb) return out;
    out.then((r) => cb(null, r), (e: unknown) => cb(e));
    return undefined;
  }
}

const require = createRequire(import.meta.url);

export interface SchemaEngine {
  diff(params: unknown): Promise<{ exitCode: number; stdout?: string }>;
  free(): void;
}

export async function loadSchemaEngine(databaseUrl: string): Promise<SchemaEngine> {
  const dir = path.dirname(require.resolve('@prisma/schema-engine-wasm/schema_engine_bg'));
  const glue = (await import(path.join(dir, 'schema_engine_bg.js'))) as Record<string, unknown> & {
    __wbg_set_wasm(w: unknown): void;
    SchemaEngine: { new: (o: unknown, cb: unknown, a: unknown) => Promise<SchemaEngine> };
  };
  // The engine reports Rust panics through this global; keep the message.
  (globalThis as { PRISMA_WASM_PANIC_REGISTRY?: unknown }).PRISMA_WASM_PANIC_REGISTRY ??= {
    set_message(message: string) {
      console.error(`schema engine panic: ${message}`);
    },
  };
  const bytes = await readFile(path.join(dir, 'schema_engine_bg.wasm'));
  const wasm = (globalThis as unknown as { WebAssembly: { instantiate(b: Uint8Array, i: object): Promise<{ instance: { exports: object } }> } }).WebAssembly;
  const { instance } = await wasm.instantiate(bytes, { './schema_engine_bg.js': glue });
  glue.__wbg_set_wasm(instance.exports);
  (instance.exports as { __wbindgen_start?: () => void }).__wbindgen_start?.();
  const adapter = bindMigrationAwareSqlAdapterFactory(new PrismaPg(new pg.Pool({ connectionString: databaseUrl, Client: CharAsTextClient })));
  const schema = await readFile('prisma/schema.prisma', 'utf8');
  return glue.SchemaEngine.new({ datamodels: [['prisma/schema.prisma', schema]] }, () => {}, adapter);
}

/** SQL that creates the schema of prisma/schema.prisma from an empty database. */
export async function schemaSql(engine: SchemaEngine): Promise<string> {
  const schema = await readFile('prisma/schema.prisma', 'utf8');
  const out = await engine.diff({
    from: { tag: 'empty' },
    to: { tag: 'schemaDatamodel', files: [{ path: 'prisma/schema.prisma', content: schema }] },
    script: true,
    exitCode: false,
    shadowDatabaseUrl: null,
    filters: { externalTables: [], externalEnums: [] },
  });
  return out.stdout ?? '';
}

/**
 * SQL that takes the database at `databaseUrl` (as the engine's adapter sees
 * it) to prisma/schema.prisma; empty when they agree (no drift).
 */
export async function diffDatabaseToSchema(engine: SchemaEngine): Promise<string> {
  const schema = await readFile('prisma/schema.prisma', 'utf8');
  const files = [{ path: 'prisma/schema.prisma', content: schema }];
  const out = await engine.diff({
    from: { tag: 'schemaDatasource', files, configDir: process.cwd() },
    to: { tag: 'schemaDatamodel', files },
    script: true,
    exitCode: false,
    shadowDatabaseUrl: null,
    filters: { externalTables: [], externalEnums: [] },
  });
  const sql = out.stdout ?? '';
  // The engine prints this comment when there is nothing to do.
  return /^\s*(-- This is an empty migration\.)?\s*$/.test(sql) ? '' : sql;
}

/**
 * A comparable description of a database's public schema: tables, columns
 * (type, nullability, default), indexes and constraints. Used to prove that
 * the migrations build exactly what schema.prisma describes, on any
 * PostgreSQL version (the engine's own introspection does not know 18 yet).
 */
export async function describeSchema(databaseUrl: string): Promise<string[]> {
  const c = new pg.Client({ connectionString: databaseUrl });
  await c.connect();
  try {
    const columns = await c.query<{ line: string }>(`
      SELECT format('column %s.%s %s %s default=%s', table_name, column_name,
                    CASE WHEN data_type = 'ARRAY' THEN udt_name ELSE data_type END || coalesce('(' || datetime_precision || ')', ''),
                    CASE is_nullable WHEN 'YES' THEN 'null' ELSE 'not null' END, coalesce(column_default, '-')) AS line
      FROM information_schema.columns
      WHERE table_schema = 'public' AND table_name <> '_prisma_migrations'`);
    const indexes = await c.query<{ line: string }>(`
      SELECT 'index ' || indexdef AS line FROM pg_indexes
      WHERE schemaname = 'public' AND tablename <> '_prisma_migrations'`);
    const constraints = await c.query<{ line: string }>(`
      SELECT format('constraint %s %s %s', conrelid::regclass, conname, pg_get_constraintdef(oid)) AS line
      FROM pg_constraint
      WHERE connamespace = 'public'::regnamespace AND contype::text <> 'n'
        AND conrelid <> coalesce(to_regclass('public._prisma_migrations'), 0)`);
    return [...columns.rows, ...indexes.rows, ...constraints.rows].map((r) => r.line).sort();
  } finally {
    await c.end();
  }
}
