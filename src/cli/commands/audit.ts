// gatehouse audit list
//
// --json output: { items: [AuditEvent…], nextCursor? } (newest first).
import { listAuditEvents } from '../../audit/audit.ts';
import { CliError, flags, type Command, type ParsedValues } from '../command.ts';
import { PAGE_LIMIT } from '../../kernel/pagination.ts';
import { show, table } from '../format.ts';

function date(values: ParsedValues, name: string): Date | undefined {
  const v = flags.str(values, name);
  if (v === undefined) return undefined;
  const d = new Date(v);
  if (Number.isNaN(d.getTime())) throw new CliError(`--${name} must be an ISO 8601 date or time`);
  return d;
}

export const auditCommands: Command[] = [
  {
    name: 'audit list',
    summary: 'show audit events, newest first',
    usage: `[--action A] [--actor ID] [--target-type T] [--target ID] [--since TIME] [--until TIME] [--limit N] [--cursor C]

  --action A        e.g. client.update, or login.* for every login event
  --actor ID        client id or account id that acted
  --target-type T   client, user, resource, role, key …
  --target ID       the id of the thing acted upon
  --since, --until  ISO 8601 times
  --limit N         page size, ${PAGE_LIMIT.min}-${PAGE_LIMIT.max} (default ${PAGE_LIMIT.default})
  --cursor C        continue after the last event of a previous page (nextCursor)
  --json            print {items, nextCursor}`,
    options: {
      action: { type: 'string' },
      actor: { type: 'string' },
      'target-type': { type: 'string' },
      target: { type: 'string' },
      since: { type: 'string' },
      until: { type: 'string' },
      limit: { type: 'string' },
      cursor: { type: 'string' },
    },
    async run(ctx, values) {
      const cursor = flags.str(values, 'cursor');
      if (cursor !== undefined && !/^\d{1,18}$/.test(cursor)) throw new CliError('--cursor must be a cursor printed by a previous page');
      const page = await listAuditEvents(await ctx.db(), {
        action: flags.str(values, 'action'),
        actorId: flags.str(values, 'actor'),
        targetType: flags.str(values, 'target-type'),
        targetId: flags.str(values, 'target'),
        since: date(values, 'since'),
        until: date(values, 'until'),
        limit: flags.int(values, 'limit', PAGE_LIMIT.min, PAGE_LIMIT.max),
        cursor,
      });
      const human =
        page.items.length === 0
          ? 'no audit events'
          : table(
              ['TIME', 'ACTION', 'ACTOR', 'TARGET', 'IP'],
              page.items.map((e) => [
                e.occurredAt.toISOString(),
                e.action,
                `${e.actorType}${e.actorId ? `:${e.actorId}` : ''}`,
                e.targetType ? `${e.targetType}:${show.opt(e.targetId)}` : '-',
                show.opt(e.ip),
              ]),
            ) + (page.nextCursor ? `\n(more: --cursor ${page.nextCursor})` : '');
      ctx.print(human, page);
    },
  },
];
