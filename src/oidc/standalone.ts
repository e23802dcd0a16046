// A provider for work outside a serving process (the CLI): the current
// signing keys and the client registry, nothing of the sign-in pages. Used to
// send back-channel logout when an operator ends someone's sessions.
import type Provider from 'oidc-provider';
import type { Config } from '../config/config.ts';
import type { DbHandle } from '../db/client.ts';
import { createClientRegistry } from '../clients/registry.ts';
import { loadKeyring } from '../keys/index.ts';
import { createAdapterFactory } from './adapter.ts';
import { clientFinder, clientPatches } from './clients.ts';
import { buildProvider } from './provider.ts';

export async function standaloneProvider(config: Config, db: Pick<DbHandle, 'prisma' | 'pool'>): Promise<Provider> {
  const keyring = await loadKeyring(db.prisma, config.keyEncryptionKey);
  const clients = createClientRegistry(db.prisma);
  const provider = buildProvider({
    config,
    jwks: keyring.jwks,
    adapter: createAdapterFactory(db, { clientFinder: clientFinder(clients) }),
    patches: () => clientPatches(clients),
  });
  return provider;
}
