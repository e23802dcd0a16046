// Single-use links mailed to people: invitations, password resets, sign-up
// and email-change verification (the `action_tokens` table).
//
// A link carries a 256-bit random secret (43 base64url characters); only its
// sha-256 digest is stored, so a copy of the database opens no account.
// Using a link is one conditional statement,
//   UPDATE action_tokens SET consumed_at = now()
//   WHERE digest = … AND purpose = … AND consumed_at IS NULL AND expires_at > now()
//   RETURNING …
// so of any number of concurrent uses, on any instance, exactly one wins
// (PostgreSQL re-checks the WHERE once the row lock is free). Callers use it
// inside the transaction that does what the link allows (set a password,
// create the account): if that fails, the link is not spent. All instants
// come from the database clock.
import { createHash, randomBytes } from 'node:crypto';
import type { Db } from '../db/client.ts';
import type { Prisma } from '../generated/prisma/client.ts';
import type { DbOrTx } from '../kernel/tx.ts';

export type LinkPurpose = 'invite' | 'reset' | 'signup' | 'email-change';

/** How long each kind of link works. */
export const LINK_LIFETIME_SECONDS: Record<LinkPurpose, number> = {
  invite: 7 * 86_400,
  reset: 30 * 60,
  signup: 24 * 3600,
  'email-change': 24 * 3600,
};

const SECRET = /^[A-Za-z0-9_-]{43}$/;

export interface LinkRow {
  id: string;
  purpose: LinkPurpose;
  accountId: string | null;
  email: string;
  data: Record<string, unknown>;
  createdAt: Date;
  expiresAt: Date;
}

export type LinkState = { ok: true; link: LinkRow } | { ok: false; reason: 'unknown' | 'used' | 'expired' };

/** sha-256 (hex) of a link's secret. */
export function linkDigest(secret: string): string {
  return createHash('sha256').update(secret).digest('hex');
}

/** A new secret and its digest. */
export function newLinkSecret(): { secret: string; digest: string } {
  const secret = randomBytes(32).toString('base64url');
  return { secret, digest: linkDigest(secret) };
}

/** Whether the string has the shape of a link secret (anything else is refused before a query). */
export function isLinkSecret(s: unknown): s is string {
  return typeof s === 'string' && SECRET.test(s);
}

interface RawRow {
  id: string;
  purpose: string;
  account_id: string | null;
  email: string;
  data: unknown;
  created_at: Date;
  expires_at: Date;
}

const toRow = (r: RawRow): LinkRow => ({
  id: r.id,
  purpose: r.purpose as LinkPurpose,
  accountId: r.account_id,
  email: r.email,
  data: r.data && typeof r.data === 'object' && !Array.isArray(r.data) ? (r.data as Record<string, unknown>) : {},
  createdAt: r.created_at,
  expiresAt: r.expires_at,
});

export interface NewLink {
  purpose: LinkPurpose;
  accountId: string | null;
  email: string;
  data?: Record<string, unknown>;
  /** default LINK_LIFETIME_SECONDS[purpose] */
  lifetimeSeconds?: number;
}

/** Stores a new link; returns its secret (to mail, never to store) and when it expires. */
export async function issueLink(db: DbOrTx, input: NewLink): Promise<{ id: string; secret: string; expiresAt: Date }> {
  const { secret, digest } = newLinkSecret();
  const seconds = input.lifetimeSeconds ?? LINK_LIFETIME_SECONDS[input.purpose];
  const data = (input.data ?? null) as Prisma.InputJsonValue | null;
  const [row] = await db.$queryRaw<{ id: string; expires_at: Date }[]>`
    INSERT INTO action_tokens (id, purpose, account_id, email, digest, data, expires_at)
    VALUES (gen_random_uuid(), ${input.purpose}, ${input.accountId}::uuid, ${input.email}, ${digest},
            ${data === null ? null : JSON.stringify(data)}::jsonb, now() + make_interval(secs => ${seconds}::double precision))
    RETURNING id, expires_at`;
  return { id: row!.id, secret, expiresAt: row!.expires_at };
}

/** Why a link cannot be used (after a use or a look-up found nothing usable). */
async function whyNot(db: DbOrTx, purpose: LinkPurpose, digest: string): Promise<'unknown' | 'used' | 'expired'> {
  const [r] = await db.$queryRaw<{ used: boolean }[]>`
    SELECT consumed_at IS NOT NULL AS used FROM action_tokens WHERE digest = ${digest} AND purpose = ${purpose}`;
  if (!r) return 'unknown';
  return r.used ? 'used' : 'expired';
}

/** The link, if it can still be used (for showing its page; nothing is spent). */
export async function peekLink(db: DbOrTx, purpose: LinkPurpose, secret: unknown): Promise<LinkState> {
  if (!isLinkSecret(secret)) return { ok: false, reason: 'unknown' };
  const digest = linkDigest(secret);
  const rows = await db.$queryRaw<RawRow[]>`
    SELECT id, purpose, account_id, email, data, created_at, expires_at FROM action_tokens
    WHERE digest = ${digest} AND purpose = ${purpose} AND consumed_at IS NULL AND expires_at > now()`;
  return rows[0] ? { ok: true, link: toRow(rows[0]) } : { ok: false, reason: await whyNot(db, purpose, digest) };
}

/**
 * Uses the link up: exactly one of any number of concurrent calls gets
 * `ok: true`. Call it inside the transaction that does what the link allows.
 */
export async function consumeLink(db: DbOrTx, purpose: LinkPurpose, secret: unknown): Promise<LinkState> {
  if (!isLinkSecret(secret)) return { ok: false, reason: 'unknown' };
  const digest = linkDigest(secret);
  const rows = await db.$queryRaw<RawRow[]>`
    UPDATE action_tokens SET consumed_at = now()
    WHERE digest = ${digest} AND purpose = ${purpose} AND consumed_at IS NULL AND expires_at > now()
    RETURNING id, purpose, account_id, email, data, created_at, expires_at`;
  return rows[0] ? { ok: true, link: toRow(rows[0]) } : { ok: false, reason: await whyNot(db, purpose, digest) };
}

/** Spends every open link of a kind for a person (a newer one replaces them, or the thing is done). Returns how many. */
export async function revokeLinks(db: DbOrTx, accountId: string, purposes: LinkPurpose[]): Promise<number> {
  return db.$executeRaw`
    UPDATE action_tokens SET consumed_at = now()
    WHERE account_id = ${accountId}::uuid AND purpose = ANY(${purposes}::text[]) AND consumed_at IS NULL AND expires_at > now()`;
}

export interface RequestLimits {
  /** links of this kind one address may be sent in `windowSeconds` */
  perAddress: number;
  /** links of this kind one account may be sent in `windowSeconds` (its address may have changed) */
  perAccount: number;
  windowSeconds: number;
}

/**
 * A link asked for by address, whoever asks (a password reset): one
 * statement that looks the address up, counts the recent links of this kind
 * for the address and for its account, and inserts the new link only if
 * both are under their limits. The row is written whether or not the
 * address has an account (account_id null), so a known and an unknown
 * address cost the same one write: the answer time tells nothing. Returns
 * the account id (null: unknown address) and whether the link was stored.
 */
export async function requestLinkByEmail(
  db: Db,
  purpose: LinkPurpose,
  email: string,
  digest: string,
  limits: RequestLimits,
  data?: Record<string, unknown>,
): Promise<{ accountId: string | null; issued: boolean; expiresAt: Date }> {
  const seconds = LINK_LIFETIME_SECONDS[purpose];
  const json = data === undefined ? null : JSON.stringify(data);
  const rows = await db.$queryRaw<{ account_id: string | null; issued: boolean; expires_at: Date }[]>`
    WITH acct AS (SELECT id, disabled FROM accounts WHERE email = ${email}),
    recent AS (
      SELECT count(*) FILTER (WHERE t.email = ${email}) AS by_address,
             count(*) FILTER (WHERE t.account_id = (SELECT id FROM acct)) AS by_account
      FROM action_tokens t
      WHERE t.purpose = ${purpose} AND t.created_at > now() - make_interval(secs => ${limits.windowSeconds}::double precision)
        AND (t.email = ${email} OR t.account_id = (SELECT id FROM acct))),
    ins AS (
      INSERT INTO action_tokens (id, purpose, account_id, email, digest, data, expires_at)
      SELECT gen_random_uuid(), ${purpose}, (SELECT id FROM acct WHERE NOT disabled), ${email}, ${digest}, ${json}::jsonb,
             now() + make_interval(secs => ${seconds}::double precision)
      FROM recent WHERE recent.by_address < ${limits.perAddress} AND recent.by_account < ${limits.perAccount}
      RETURNING account_id, expires_at)
    SELECT (SELECT account_id FROM ins) AS account_id, EXISTS (SELECT 1 FROM ins) AS issued,
           now() + make_interval(secs => ${seconds}::double precision) AS expires_at`;
  const r = rows[0]!;
  return { accountId: r.account_id, issued: r.issued, expiresAt: r.expires_at };
}

/**
 * One batch of the cleanup job (src/db/cleanup.ts): deletes at most
 * `batchSize` links that expired more than a day ago (used or not; a
 * day's margin keeps the "already used" / "expired" answers meaningful).
 */
export async function pruneLinks(db: Db, batchSize: number): Promise<number> {
  return db.$executeRaw`
    DELETE FROM action_tokens WHERE id IN (
      SELECT id FROM action_tokens WHERE expires_at < now() - interval '1 day'
      LIMIT ${batchSize} FOR UPDATE SKIP LOCKED)`;
}
