// Which Gatehouse instance holds a database connection.
//
// Every process that serves requests has a random instance id and opens all
// its connections (pool and change feed) with the application_name
// `gatehouse/<id>`. PostgreSQL lists each connection in pg_stat_activity and
// drops it as soon as the connection closes — also when the process is
// killed, because the kernel closes its sockets. "Has instance X died?" is
// therefore one condition the database answers inside any statement, without
// heartbeats or a registry table (used by the refresh-token retry,
// src/oidc/refresh-rotation.ts).
import { randomBytes } from 'node:crypto';
import { Prisma } from '../generated/prisma/client.ts';

const PREFIX = 'gatehouse/';

export function newInstanceId(): string {
  return randomBytes(8).toString('hex');
}

/** The application_name of every connection of that instance (≤ 63 bytes). */
export function applicationName(instanceId: string): string {
  return `${PREFIX}${instanceId}`;
}

/** SQL: true when no connection of the instance named in `column` is open. */
export function instanceGoneSql(column: 'consumed_by'): Prisma.Sql {
  return Prisma.sql`NOT EXISTS (SELECT 1 FROM pg_stat_activity a WHERE a.application_name = ${PREFIX} || ${Prisma.raw(column)})`;
}
