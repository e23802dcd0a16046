// gatehouse keys list | rotate
//
// --json output: list → [{ kid, alg, status, createdAt, activatesAt, retiredAt, publishUntil }];
// rotate → { kid, alg, activatesAt } (ISO 8601).
import { recordAudit } from '../../audit/audit.ts';
import { listSigningKeys, rotateSigningKey, SIGNING_ALGS, type SigningAlg } from '../../keys/index.ts';
import { LONGEST_SIGNED_TOKEN_SECONDS } from '../../oidc/lifetimes.ts';
import { CliError, flags, type Command } from '../command.ts';
import { show, table } from '../format.ts';

export const keyCommands: Command[] = [
  {
    name: 'keys list',
    summary: 'list signing keys and their state (active, pending, retired)',
    usage: `

  --json   print a JSON array of keys (no private material)`,
    async run(ctx) {
      const keys = await listSigningKeys(await ctx.db());
      ctx.print(
        table(
          ['KID', 'ALG', 'STATUS', 'CREATED', 'SIGNS FROM', 'PUBLISHED UNTIL'],
          keys.map((k) => [k.kid, k.alg, k.status, show.date(k.createdAt), show.date(k.activatesAt), show.date(k.publishUntil)]),
        ),
        keys,
      );
    },
  },
  {
    name: 'keys rotate',
    summary: 'publish a new signing key now; it signs after the lead time',
    usage: `[--lead SECONDS] [--alg RS256|ES256|EdDSA]

  --lead SECONDS   how long the new key is published before it signs
                   (default KEY_ROTATION_LEAD_SECONDS; 0 signs at once, for emergencies)
  --alg ALG        which key to rotate (default RS256)
  --json           print {kid, alg, activatesAt}`,
    options: { lead: { type: 'string' }, alg: { type: 'string' } },
    async run(ctx, values) {
      const lead = flags.int(values, 'lead', 0, 30 * 86400) ?? ctx.config.keyRotationLeadSeconds;
      const alg = (flags.str(values, 'alg') ?? 'RS256') as SigningAlg;
      if (!SIGNING_ALGS.includes(alg)) throw new CliError(`--alg must be one of ${SIGNING_ALGS.join(', ')}`);
      const db = await ctx.db();
      const r = await rotateSigningKey(db, ctx.config.keyEncryptionKey, {
        alg,
        leadSeconds: lead,
        maxTokenTtlSeconds: LONGEST_SIGNED_TOKEN_SECONDS,
      });
      await recordAudit(db, {
        action: 'key.rotate',
        actor: ctx.actor,
        target: { type: 'key', id: r.kid },
        details: { alg: r.alg, activatesAt: r.activatesAt, leadSeconds: lead },
      });
      const out = { kid: r.kid, alg: r.alg, activatesAt: r.activatesAt.toISOString() };
      ctx.print(
        lead === 0
          ? `rotated ${alg}: key ${r.kid} signs from now on`
          : `rotated ${alg}: key ${r.kid} is published now and signs from ${out.activatesAt}`,
        out,
      );
    },
  },
];
