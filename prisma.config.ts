// Prisma CLI configuration. The native schema engine cannot be downloaded on
// these machines; `prisma generate` only needs the path to exist, and
// migrations are applied by Gatehouse's own runner (src/db/migrate.ts).
import { defineConfig } from 'prisma/config';

process.env.PRISMA_SCHEMA_ENGINE_BINARY ??= '/bin/false';

export default defineConfig({
  schema: 'prisma/schema.prisma',
  migrations: { path: 'prisma/migrations' },
});
