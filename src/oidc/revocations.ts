// Revoked JWT access tokens, kept in memory on every instance so that
// introspection, token exchange and the admin API check revocation without a
// query. The table `revoked_tokens` is the source of truth: loaded at start,
// kept current through the change feed (a trigger announces every inserted
// jti, see the migration revoked_tokens_notify), reloaded whole after the
// feed reconnects, pruned as tokens expire.
import type { ChangeFeed } from '../db/changes.ts';
import type { Db } from '../db/client.ts';

export interface RevocationList {
  /** whether this jti was revoked (and has not expired yet) */
  has(jti: string): boolean;
  /** records a revocation: stored, published to every instance, known here at once */
  revoke(jti: string, expiresAt: Date): Promise<void>;
  close(): void;
}

export async function createRevocationList(db: Db, feed?: ChangeFeed): Promise<RevocationList> {
  const revoked = new Map<string, number>(); // jti → expiry (ms)

  const reload = async () => {
    const rows = await db.revokedToken.findMany({ where: { expiresAt: { gt: new Date() } }, select: { jti: true, expiresAt: true } });
    revoked.clear();
    for (const r of rows) revoked.set(r.jti, r.expiresAt.getTime());
  };
  const learn = async (jti: string) => {
    const row = await db.revokedToken.findUnique({ where: { jti }, select: { expiresAt: true } });
    if (row) revoked.set(jti, row.expiresAt.getTime());
  };
  await reload();

  const unsubscribe = feed?.subscribe('revocation', (id) => {
    // A failed read leaves the entry unknown until the next reconnect reload;
    // the revoking instance itself already knows it.
    void (id === '*' ? reload() : learn(id)).catch(() => {});
  });
  const pruner = setInterval(() => {
    const now = Date.now();
    for (const [jti, exp] of revoked) if (exp <= now) revoked.delete(jti);
  }, 60_000);
  pruner.unref();

  return {
    has: (jti) => {
      const exp = revoked.get(jti);
      return exp !== undefined && exp > Date.now();
    },
    async revoke(jti, expiresAt) {
      await db.revokedToken.createMany({ data: [{ jti, expiresAt }], skipDuplicates: true });
      revoked.set(jti, expiresAt.getTime());
    },
    close() {
      unsubscribe?.();
      clearInterval(pruner);
      revoked.clear();
    },
  };
}
