// Revocations reach every instance's in-memory list through the change feed
// (src/oidc/revocations.ts): tests that revoke elsewhere wait for it, bounded.
export async function knownRevoked(list: { has(jti: string): boolean }, jti: string, ms = 2_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!list.has(jti)) {
    if (Date.now() > deadline) throw new Error(`revocation of ${jti} did not arrive within ${ms} ms`);
    await new Promise((r) => setTimeout(r, 10));
  }
}
