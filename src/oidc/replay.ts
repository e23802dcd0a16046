// One store of used one-time values for every instance: the adapter's
// ReplayDetection rows, whose insert succeeds only when no live row has that
// id (adapter.ts). oidc-provider keeps DPoP proof and client-assertion jtis
// there; the admin API's DPoP proofs (checked by src/verify) go there too, so
// a proof replayed against another instance is refused like one replayed
// against the same instance.
import { createHash } from 'node:crypto';
import type { ReplayStore } from '../verify/index.ts';
import { AdapterInputError, type AdapterConstructor } from './adapter.ts';

export function sharedReplayStore(Adapter: AdapterConstructor, namespace: string): ReplayStore {
  const rows = new Adapter('ReplayDetection');
  return {
    async add(key, expiresAt) {
      // a fixed-length id whatever the proof's jti holds
      const id = `${namespace}:${createHash('sha256').update(key).digest('base64url')}`;
      const ttl = Math.max(1, Math.ceil((expiresAt - Date.now()) / 1000));
      try {
        await rows.upsert(id, { namespace }, ttl);
        return true;
      } catch (err) {
        if (err instanceof AdapterInputError) return false; // a live row: replayed
        throw err;
      }
    },
  };
}
