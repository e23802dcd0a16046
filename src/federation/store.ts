// Upstream identity providers (the `upstream_idps` table), the links between
// accounts and upstream identities (`upstream_idp_links`), and the
// authorization requests sent upstream (`federation_requests`).
//
// An idp's client secret is encrypted at rest with KEY_ENCRYPTION_KEY: the
// same AES-256-GCM sealing as the TOTP secrets (src/accounts/mfa.ts
// sealString, the scheme of src/keys/encryption.ts), with the idp's id as
// additional authenticated data, so a blob copied onto another row does not
// open. Nothing here ever returns it but `idpSecret`, which the relying party
// (relying-party.ts) calls for the token request.
//
// The writes here are for writes.ts (which checks the actor and audits) and
// for tests that seed data; each announces itself with publishChange.
import { createHash, randomUUID } from 'node:crypto';
import { z } from 'zod';
import { openString, sealString } from '../accounts/mfa.ts';
import { publishChange } from '../db/changes.ts';
import type { UpstreamIdp } from '../generated/prisma/client.ts';
import { ConflictError, NotFoundError, ValidationError, VersionMismatchError } from '../kernel/errors.ts';
import { pageLimit, toPage, type Page, type PageRequest } from '../kernel/pagination.ts';
import { inTransaction, isUniqueViolation, type DbOrTx } from '../kernel/tx.ts';
import { checked, checkWebUri, parseWith, ScopeToken, unique } from '../kernel/validation.ts';

// ------------------------------------------------------------------ input

const NAME = /^[A-Za-z0-9][A-Za-z0-9 ._()-]{0,63}$/;
const DOMAIN = /^(?=.{1,253}$)([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,63}$/;
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
export const CLIENT_SECRET_MAX = 4096;

/** The scopes asked of a provider when none are given. */
export const DEFAULT_IDP_SCOPES = ['openid', 'email', 'profile'] as const;

const field = {
  name: checked((v) => (NAME.test(v) ? undefined : `'${v}' must be 1-64 letters, digits, spaces and . _ ( ) - (starting with a letter or digit)`), 64),
  // kept exactly as given: discovery requires the provider's `issuer` to match it character for character
  issuer: checked((v) => {
    const reason = checkWebUri(v);
    if (reason) return reason.replace('(http only for localhost)', '(http only on loopback, for tests)');
    const u = new URL(v);
    if (u.search) return `'${v}' must not have a query`;
    return undefined;
  }),
  clientId: z.string().min(1, 'must not be empty').max(512, 'must be at most 512 characters').regex(/^[\x21-\x7E]+$/, 'must be printable ASCII without spaces'),
  scopes: z.array(ScopeToken).max(50, 'at most 50 scopes'),
  domains: z
    .array(z.string().max(253).transform((d) => d.trim().toLowerCase()))
    .max(100, 'at most 100 domains')
    .superRefine((list, ctx) => {
      for (const [i, d] of list.entries()) {
        if (!DOMAIN.test(d)) ctx.addIssue({ code: 'custom', path: [i], message: `'${d}' is not a domain name (e.g. example.com)` });
      }
    }),
  disabled: z.boolean(),
  clientSecret: z.string().min(1, 'must not be empty').max(CLIENT_SECRET_MAX, `must be at most ${CLIENT_SECRET_MAX} characters`),
};

/** A new provider: the fields of `gatehouse idps create`, the admin API and the apply file. */
export const IdpInput = z.strictObject({
  name: field.name,
  issuer: field.issuer,
  clientId: field.clientId,
  clientSecret: field.clientSecret,
  scopes: field.scopes.optional(),
  domains: field.domains.optional(),
  disabled: field.disabled.optional(),
});
export type IdpInput = z.input<typeof IdpInput>;

/** Changes to a provider: any subset (a list replaces the stored list; a clientSecret replaces the secret). */
export const IdpPatch = z.strictObject({
  name: field.name.optional(),
  issuer: field.issuer.optional(),
  clientId: field.clientId.optional(),
  clientSecret: field.clientSecret.optional(),
  scopes: field.scopes.optional(),
  domains: field.domains.optional(),
  disabled: field.disabled.optional(),
});
export type IdpPatch = z.input<typeof IdpPatch>;

/** `openid` always, then the given scopes (the defaults when none are given). */
export function normalizeScopes(scopes: readonly string[] | undefined): string[] {
  return unique(['openid', ...(scopes && scopes.length > 0 ? scopes : DEFAULT_IDP_SCOPES)]);
}


// ------------------------------------------------------------------ views

/** A provider as shown by the CLI and the admin API: never its secret. */
export interface IdpView {
  id: string;
  name: string;
  issuer: string;
  clientId: string;
  scopes: string[];
  domains: string[];
  disabled: boolean;
  createdAt: Date;
  updatedAt: Date;
  version: number;
}

export function toIdpView(r: UpstreamIdp): IdpView {
  return {
    id: r.id,
    name: r.name,
    issuer: r.issuer,
    clientId: r.clientId,
    scopes: r.scopes,
    domains: r.domains,
    disabled: r.disabled,
    createdAt: r.createdAt,
    updatedAt: r.updatedAt,
    version: r.version,
  };
}

const secretAad = (id: string) => `gatehouse/idp-client-secret/v1:${id}`;

/** The secret could not be decrypted: a wrong KEY_ENCRYPTION_KEY or an altered row. */
export class IdpSecretError extends Error {
  override readonly name = 'IdpSecretError';
  constructor(id: string) {
    super(`cannot decrypt the client secret of identity provider ${id}: KEY_ENCRYPTION_KEY is wrong or the row was altered`);
  }
}

// ---------------------------------------------------------------- lookups

/** By id (a UUID) or by name. */
export async function findIdp(db: DbOrTx, idOrName: string): Promise<UpstreamIdp | null> {
  if (UUID.test(idOrName)) {
    const byId = await db.upstreamIdp.findUnique({ where: { id: idOrName.toLowerCase() } });
    if (byId) return byId;
  }
  return db.upstreamIdp.findUnique({ where: { name: idOrName } });
}

export async function getIdpRecord(db: DbOrTx, idOrName: string): Promise<UpstreamIdp> {
  const r = await findIdp(db, idOrName);
  if (!r) throw new NotFoundError('identity provider', idOrName);
  return r;
}

export async function getIdp(db: DbOrTx, idOrName: string): Promise<IdpView> {
  return toIdpView(await getIdpRecord(db, idOrName));
}

export async function listIdps(db: DbOrTx, req: PageRequest = {}): Promise<Page<IdpView>> {
  const limit = pageLimit(req.limit);
  const after = req.cursor !== undefined ? Buffer.from(req.cursor, 'base64url').toString('utf8') : undefined;
  const rows = await db.upstreamIdp.findMany({ where: after !== undefined ? { name: { gt: after } } : {}, orderBy: { name: 'asc' }, take: limit + 1 });
  return toPage(rows.map(toIdpView), limit, (r) => Buffer.from(r.name, 'utf8').toString('base64url'));
}

/** The providers offered on the login page: enabled ones, by name. */
export async function enabledIdps(db: DbOrTx): Promise<IdpView[]> {
  return (await db.upstreamIdp.findMany({ where: { disabled: false }, orderBy: { name: 'asc' } })).map(toIdpView);
}

/** The enabled provider an email's domain is routed to, if any. */
export async function idpForEmail(db: DbOrTx, email: string): Promise<IdpView | undefined> {
  const at = email.lastIndexOf('@');
  if (at < 0) return undefined;
  const domain = email.slice(at + 1).trim().toLowerCase();
  if (!domain) return undefined;
  const r = await db.upstreamIdp.findFirst({ where: { disabled: false, domains: { has: domain } } });
  return r ? toIdpView(r) : undefined;
}

/** The decrypted client secret (for the token request only). */
export function idpSecret(r: UpstreamIdp, kek: Buffer): string {
  const s = openString(r.clientSecretEncrypted, kek, secretAad(r.id));
  if (s === undefined) throw new IdpSecretError(r.id);
  return s;
}

// ----------------------------------------------------------------- writes

async function assertDomainsFree(db: DbOrTx, domains: readonly string[], exceptId?: string): Promise<void> {
  if (domains.length === 0) return;
  const taken = await db.upstreamIdp.findFirst({ where: { domains: { hasSome: [...domains] }, ...(exceptId ? { id: { not: exceptId } } : {}) } });
  if (taken) {
    const d = domains.find((x) => taken.domains.includes(x))!;
    throw new ValidationError('domains', `'${d}' is already routed to identity provider '${taken.name}'`);
  }
}

const duplicateName = (name: string) => new ConflictError(`identity provider '${name}' already exists`);

export async function createIdp(db: DbOrTx, kek: Buffer, input: IdpInput): Promise<IdpView> {
  const v = parseWith(IdpInput, input as Record<string, unknown>);
  const domains = unique(v.domains ?? []);
  return inTransaction(db, async (tx) => {
    if (await tx.upstreamIdp.findUnique({ where: { name: v.name }, select: { id: true } })) throw duplicateName(v.name);
    await assertDomainsFree(tx, domains);
    const id = randomUUID();
    try {
      const row = await tx.upstreamIdp.create({
        data: {
          id,
          name: v.name,
          issuer: v.issuer,
          clientId: v.clientId,
          clientSecretEncrypted: sealString(v.clientSecret, kek, secretAad(id)),
          scopes: normalizeScopes(v.scopes),
          domains,
          disabled: v.disabled ?? false,
        },
      });
      await publishChange(tx, 'idp', row.id);
      return toIdpView(row);
    } catch (err) {
      if (isUniqueViolation(err)) throw duplicateName(v.name);
      throw err;
    }
  });
}

export async function updateIdp(db: DbOrTx, kek: Buffer, idOrName: string, patch: IdpPatch, opts: { expectedVersion?: number } = {}): Promise<IdpView> {
  const p = parseWith(IdpPatch, patch as Record<string, unknown>);
  return inTransaction(db, async (tx) => {
    const before = await getIdpRecord(tx, idOrName);
    if (opts.expectedVersion !== undefined && opts.expectedVersion !== before.version) throw new VersionMismatchError(before.version);
    if (p.name !== undefined && p.name !== before.name && (await tx.upstreamIdp.findUnique({ where: { name: p.name }, select: { id: true } }))) {
      throw duplicateName(p.name);
    }
    const domains = p.domains !== undefined ? unique(p.domains) : undefined;
    if (domains) await assertDomainsFree(tx, domains, before.id);
    const { count } = await tx.upstreamIdp.updateMany({
      where: { id: before.id, version: before.version },
      data: {
        ...(p.name !== undefined && { name: p.name }),
        ...(p.issuer !== undefined && { issuer: p.issuer }),
        ...(p.clientId !== undefined && { clientId: p.clientId }),
        ...(p.clientSecret !== undefined && { clientSecretEncrypted: sealString(p.clientSecret, kek, secretAad(before.id)) }),
        ...(p.scopes !== undefined && { scopes: normalizeScopes(p.scopes) }),
        ...(domains !== undefined && { domains }),
        ...(p.disabled !== undefined && { disabled: p.disabled }),
        version: { increment: 1 },
      },
    });
    if (count === 0) throw new VersionMismatchError((await getIdpRecord(tx, before.id)).version);
    await publishChange(tx, 'idp', before.id);
    return getIdp(tx, before.id);
  });
}

/** Deletes a provider and its links (the accounts stay; they sign in with a password or another provider). */
export async function deleteIdp(db: DbOrTx, idOrName: string, opts: { expectedVersion?: number } = {}): Promise<IdpView> {
  return inTransaction(db, async (tx) => {
    const before = await getIdpRecord(tx, idOrName);
    if (opts.expectedVersion !== undefined && opts.expectedVersion !== before.version) throw new VersionMismatchError(before.version);
    await tx.upstreamIdp.delete({ where: { id: before.id } });
    await publishChange(tx, 'idp', before.id);
    return toIdpView(before);
  });
}

// ------------------------------------------------------------------ links

export interface IdpLink {
  accountId: string;
  idpId: string;
  subject: string;
  createdAt: Date;
}

export async function findLink(db: DbOrTx, idpId: string, subject: string): Promise<IdpLink | undefined> {
  return (await db.upstreamIdpLink.findUnique({ where: { idpId_subject: { idpId, subject } } })) ?? undefined;
}

export async function linksOfAccount(db: DbOrTx, accountId: string): Promise<IdpLink[]> {
  return db.upstreamIdpLink.findMany({ where: { accountId }, orderBy: { createdAt: 'asc' } });
}

/** Links an upstream identity to an account; a second link of the same identity is a conflict. */
export async function createLink(db: DbOrTx, link: { accountId: string; idpId: string; subject: string }): Promise<IdpLink> {
  try {
    return await db.upstreamIdpLink.create({ data: link });
  } catch (err) {
    if (isUniqueViolation(err)) throw new ConflictError('this upstream identity is already linked to an account');
    throw err;
  }
}

// ---------------------------------------------------- upstream requests

/** How long a person may take at the upstream provider. */
export const REQUEST_TTL_SECONDS = 600;

export const stateDigest = (state: string) => createHash('sha256').update(state, 'utf8').digest('base64url');
const verifierAad = (digest: string) => `gatehouse/federation-pkce/v1:${digest}`;

export interface PendingRequest {
  idpId: string;
  interactionUid: string;
  nonce: string;
  codeVerifier: string;
}

/** Stores an upstream request under its state's digest (and forgets expired ones). */
export async function saveRequest(db: DbOrTx, kek: Buffer, state: string, r: PendingRequest): Promise<void> {
  const digest = stateDigest(state);
  await db.federationRequest.deleteMany({ where: { expiresAt: { lt: new Date(Date.now() - 3_600_000) } } });
  await db.federationRequest.create({
    data: {
      stateDigest: digest,
      idpId: r.idpId,
      interactionUid: r.interactionUid,
      nonce: r.nonce,
      codeVerifier: sealString(r.codeVerifier, kek, verifierAad(digest)),
      expiresAt: new Date(Date.now() + REQUEST_TTL_SECONDS * 1000),
    },
  });
}

/**
 * Takes the request of `state` once: a conditional update (consumed_at still
 * empty, not expired) that only one caller can win, however many race.
 * Undefined for an unknown, expired or already used state.
 */
export async function consumeRequest(db: DbOrTx, kek: Buffer, state: string): Promise<PendingRequest | undefined> {
  if (typeof state !== 'string' || state.length === 0 || state.length > 512) return undefined;
  const digest = stateDigest(state);
  const { count } = await db.federationRequest.updateMany({
    where: { stateDigest: digest, consumedAt: null, expiresAt: { gt: new Date() } },
    data: { consumedAt: new Date() },
  });
  if (count !== 1) return undefined;
  const row = await db.federationRequest.findUnique({ where: { stateDigest: digest } });
  if (!row) return undefined;
  const codeVerifier = openString(row.codeVerifier, kek, verifierAad(digest));
  if (codeVerifier === undefined) return undefined;
  return { idpId: row.idpId, interactionUid: row.interactionUid, nonce: row.nonce, codeVerifier };
}
