// Signing key lifecycle in the `signing_keys` table.
//
// A key row has three instants:
//   activatesAt   published at once (from creation), signs from this instant
//   retiredAt     a newer key of the same alg took over signing at this instant
//   publishUntil  after this no unexpired token can carry its signature: unpublish
// For each alg exactly one key signs at a given instant: the newest key whose
// activatesAt has passed. Every other key that is not expired is published for
// verification only. The same rule drives the keyring and the listing.
//
// Writes hold a transaction-scoped advisory lock, so instances that start or
// rotate at once serialise, and each write announces itself on the change feed
// (publishChange) in the same transaction so other instances reload.
import { calculateJwkThumbprint, exportJWK, generateKeyPair, type JWK } from 'jose';
import type { Db } from '../db/client.ts';
import { publishChange } from '../db/changes.ts';
import type { Prisma, SigningKey } from '../generated/prisma/client.ts';
import { inTransaction, type DbOrTx, type Tx } from '../kernel/tx.ts';
import { decryptPrivateJwk, encryptPrivateJwk } from './encryption.ts';

/** The algorithms Gatehouse signs with: the one list every part uses (tokens, resources, the admin API, discovery). */
export const SIGNING_ALGS = ['RS256', 'ES256', 'EdDSA'] as const;
export type SigningAlg = (typeof SIGNING_ALGS)[number];

export type KeyStatus = 'active' | 'pending' | 'retired' | 'expired';

export interface SigningKeyInfo {
  kid: string;
  alg: string;
  createdAt: Date;
  activatesAt: Date;
  retiredAt: Date | null;
  publishUntil: Date | null;
  status: KeyStatus;
}

export interface Keyring {
  /** private JWKs, for oidc-provider's `jwks` configuration */
  jwks: { keys: JWK[] };
  /** the same keys without private members, for `/jwks` and verifiers */
  publicJwks: { keys: JWK[] };
  /** the next instant at which loadKeyring would return something else */
  nextChangeAt: Date | undefined;
}

export interface RotationResult {
  kid: string;
  alg: SigningAlg;
  activatesAt: Date;
}

// Any constant works as long as every instance uses the same one; distinct
// from the migration runner's lock.
const KEYS_LOCK_ID = 0x6b657973; // "keys"

// Generating an RSA key or waiting for another instance's lock can take a
// moment; Prisma's default 5 s interactive transaction timeout is too tight on
// a loaded machine.
const TX_OPTIONS = { maxWait: 10_000, timeout: 30_000 };

const PRIVATE_MEMBERS = ['d', 'p', 'q', 'dp', 'dq', 'qi', 'oth', 'priv'] as const;

async function lockKeys(tx: Tx): Promise<void> {
  await tx.$executeRaw`SELECT pg_advisory_xact_lock(${KEYS_LOCK_ID}::bigint)`;
}

export function toPublicJwk(jwk: JWK): JWK {
  const pub: JWK = { ...jwk };
  for (const m of PRIVATE_MEMBERS) delete pub[m];
  return pub;
}

interface NewKey {
  kid: string;
  alg: SigningAlg;
  publicJwk: JWK;
  privateJwkEncrypted: string;
}

/** Generates a key pair; done outside any transaction because RSA generation is slow. */
async function generateSigningKey(alg: SigningAlg, kek: Buffer): Promise<NewKey> {
  // RS256 → RSA 2048 (jose's default modulus), ES256 → P-256, EdDSA → Ed25519.
  const { privateKey } = await generateKeyPair(alg, { extractable: true });
  const material = await exportJWK(privateKey);
  // RFC 7638 thumbprint: stable, unique per key, and what verifiers expect a kid to look like.
  const kid = await calculateJwkThumbprint(material, 'sha256');
  const privateJwk: JWK = { ...material, kid, alg, use: 'sig' };
  return { kid, alg, publicJwk: toPublicJwk(privateJwk), privateJwkEncrypted: encryptPrivateJwk(privateJwk, kek, kid) };
}

async function insertKey(tx: Tx, key: NewKey, createdAt: Date, activatesAt: Date): Promise<void> {
  await tx.signingKey.create({
    data: {
      kid: key.kid,
      alg: key.alg,
      publicJwk: key.publicJwk as Prisma.InputJsonObject,
      privateJwkEncrypted: key.privateJwkEncrypted,
      createdAt,
      activatesAt,
    },
  });
  await publishChange(tx, 'key', key.kid);
}

/** Throws KeyDecryptionError for the first row the KEK cannot open. */
function assertDecryptable(rows: SigningKey[], kek: Buffer): void {
  for (const row of rows) decryptPrivateJwk(row.privateJwkEncrypted, kek, row.kid);
}

const isExpired = (row: SigningKey, now: Date) => row.publishUntil !== null && row.publishUntil <= now;

// Newest first: by activation, then creation, then kid (only for a stable order).
function newestFirst(a: SigningKey, b: SigningKey): number {
  return (
    b.activatesAt.getTime() - a.activatesAt.getTime() ||
    b.createdAt.getTime() - a.createdAt.getTime() ||
    (a.kid < b.kid ? 1 : a.kid > b.kid ? -1 : 0)
  );
}

/**
 * kid of the key that signs for each alg at `now` (rows in any order): the
 * newest activated, unexpired key. A key already retired at `now` only counts
 * when there is no other; that settles a rotation with no lead landing in the
 * same millisecond as the key it retires.
 */
function signersAt(rows: SigningKey[], now: Date): Set<string> {
  const retired = (r: SigningKey) => (r.retiredAt !== null && r.retiredAt <= now ? 1 : 0);
  const candidates = rows
    .filter((r) => !isExpired(r, now) && r.activatesAt <= now)
    .sort((a, b) => retired(a) - retired(b) || newestFirst(a, b));
  const byAlg = new Map<string, string>();
  for (const row of candidates) if (!byAlg.has(row.alg)) byAlg.set(row.alg, row.kid);
  return new Set(byAlg.values());
}

/**
 * Creates one key for each alg that has none yet. A wrong KEK fails with
 * KeyDecryptionError before anything is written: every stored key is
 * decrypted once. Returns the keys it created.
 */
export async function ensureSigningKeys(
  db: Db,
  kek: Buffer,
  opts: { algs?: readonly SigningAlg[] } = {},
): Promise<{ created: { kid: string; alg: SigningAlg }[] }> {
  const algs = opts.algs ?? SIGNING_ALGS;
  const existing = await db.signingKey.findMany();
  assertDecryptable(existing, kek);
  const missing = algs.filter((alg) => !existing.some((r) => r.alg === alg));
  if (missing.length === 0) return { created: [] };

  // Generate before locking; if another instance wins the race these are discarded.
  const fresh = await Promise.all(missing.map((alg) => generateSigningKey(alg, kek)));
  return db.$transaction(async (tx) => {
    await lockKeys(tx);
    const rows = await tx.signingKey.findMany();
    // Another instance may have written keys meanwhile, possibly under another KEK.
    assertDecryptable(rows, kek);
    const now = new Date();
    const created: { kid: string; alg: SigningAlg }[] = [];
    for (const key of fresh) {
      if (rows.some((r) => r.alg === key.alg)) continue;
      await insertKey(tx, key, now, now);
      created.push({ kid: key.kid, alg: key.alg });
    }
    return { created };
  }, TX_OPTIONS);
}

/**
 * Adds a new key for `alg` that signs from now + leadSeconds (published at once).
 * The key signing now is retired at that instant and stays published for
 * maxTokenTtlSeconds more, until every token it signed has expired.
 *
 * A pending key from an earlier rotation (published, never signed) is deleted:
 * the new rotation replaces it. Nothing can carry its signature, and keeping it
 * would leave two pending keys racing to take over; an emergency rotation
 * (leadSeconds 0) should also drop any key created before it.
 *
 * If no key signs for `alg` yet, the new key signs at once whatever the lead.
 */
export async function rotateSigningKey(
  db: DbOrTx,
  kek: Buffer,
  opts: {
    alg?: SigningAlg;
    leadSeconds: number;
    maxTokenTtlSeconds: number;
    now?: Date;
    /** runs inside the rotation's transaction once the key is in (keys/writes.ts records the audit event there) */
    record?: (tx: Tx, result: RotationResult) => Promise<void>;
  },
): Promise<RotationResult> {
  const { alg = 'RS256', leadSeconds, maxTokenTtlSeconds } = opts;
  if (!SIGNING_ALGS.includes(alg)) throw new RangeError(`unsupported signing alg ${String(alg)}`);
  if (!Number.isFinite(leadSeconds) || leadSeconds < 0) throw new RangeError('leadSeconds must be a number ≥ 0');
  if (!Number.isFinite(maxTokenTtlSeconds) || maxTokenTtlSeconds < 0) {
    throw new RangeError('maxTokenTtlSeconds must be a number ≥ 0');
  }
  const key = await generateSigningKey(alg, kek);

  return inTransaction(db, async (tx) => {
    await lockKeys(tx);
    const now = opts.now ?? new Date();
    const rows = (await tx.signingKey.findMany({ where: { alg } })).filter((r) => !isExpired(r, now));
    // Refuse to add a key under a KEK that cannot open the existing ones.
    assertDecryptable(rows, kek);

    for (const pending of rows.filter((r) => r.activatesAt > now)) {
      await tx.signingKey.delete({ where: { kid: pending.kid } });
      await publishChange(tx, 'key', pending.kid);
    }

    const [currentKid] = signersAt(rows, now);
    const activatesAt = currentKid ? new Date(now.getTime() + leadSeconds * 1000) : now;
    if (currentKid) {
      await tx.signingKey.update({
        where: { kid: currentKid },
        data: { retiredAt: activatesAt, publishUntil: new Date(activatesAt.getTime() + maxTokenTtlSeconds * 1000) },
      });
      await publishChange(tx, 'key', currentKid);
    }
    await insertKey(tx, key, now, activatesAt);
    const result = { kid: key.kid, alg, activatesAt };
    await opts.record?.(tx, result);
    return result;
  }, TX_OPTIONS);
}

/** Every stored key with its status at `now`, newest first. No key material. */
export async function listSigningKeys(db: Db, now: Date = new Date()): Promise<SigningKeyInfo[]> {
  const rows = (await db.signingKey.findMany()).sort(newestFirst);
  const signers = signersAt(rows, now);
  return rows.map((r) => ({
    kid: r.kid,
    alg: r.alg,
    createdAt: r.createdAt,
    activatesAt: r.activatesAt,
    retiredAt: r.retiredAt,
    publishUntil: r.publishUntil,
    status: isExpired(r, now)
      ? 'expired'
      : r.activatesAt > now
        ? 'pending'
        : signers.has(r.kid)
          ? 'active'
          : 'retired',
  }));
}

/**
 * The keys oidc-provider should hold at `now`: every unexpired key, the one
 * signing key per alg first and without key_ops, the others with
 * key_ops ['verify'] so oidc-provider's selectForSign never picks them.
 */
export async function loadKeyring(db: Db, kek: Buffer, now: Date = new Date()): Promise<Keyring> {
  const rows = (
    await db.signingKey.findMany({ where: { OR: [{ publishUntil: null }, { publishUntil: { gt: now } }] } })
  ).sort(newestFirst);
  const signers = signersAt(rows, now);
  const ordered = [...rows.filter((r) => signers.has(r.kid)), ...rows.filter((r) => !signers.has(r.kid))];

  const keys = ordered.map((row): JWK => {
    // Stored private JWKs carry kid/alg/use already; set them from the row anyway.
    const { key_ops: _ignored, ...material } = decryptPrivateJwk(row.privateJwkEncrypted, kek, row.kid);
    const jwk: JWK = { ...material, kid: row.kid, alg: row.alg, use: 'sig' };
    if (!signers.has(row.kid)) jwk.key_ops = ['verify'];
    return jwk;
  });

  // The result changes when a pending key activates or a published key expires.
  let next: number | undefined;
  for (const row of rows) {
    for (const t of [row.activatesAt, row.publishUntil]) {
      if (t && t > now && (next === undefined || t.getTime() < next)) next = t.getTime();
    }
  }

  return {
    jwks: { keys },
    publicJwks: { keys: keys.map(toPublicJwk) },
    nextChangeAt: next === undefined ? undefined : new Date(next),
  };
}

/**
 * One batch of the cleanup job (src/db/cleanup.ts): deletes at most
 * `batchSize` keys that were retired and whose publishUntil has passed, so no
 * unexpired token can carry their signature and /jwks no longer lists them.
 * `FOR UPDATE SKIP LOCKED`: instances running at once delete disjoint rows.
 *
 * retired_at guards the key that signs: it never has publish_until in the past
 * unless something else is wrong, and deleting it must never happen. No change
 * notification: loadKeyring already leaves out keys past publishUntil, so no
 * instance's keyring changes.
 */
export function pruneRetiredKeys(db: Db, batchSize: number): Promise<number> {
  return db.$executeRaw`
    DELETE FROM signing_keys WHERE kid IN (
      SELECT kid FROM signing_keys
      WHERE publish_until < now() AND retired_at IS NOT NULL
      LIMIT ${batchSize} FOR UPDATE SKIP LOCKED)`;
}
