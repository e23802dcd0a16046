// Login, consent and logout: the pages people see, and the oidc-provider
// hooks that go with them. To be implemented.
import type { Middleware } from 'koa';
import type Provider from 'oidc-provider';
import type { ClientRegistry } from '../clients/registry.ts';
import type { Config } from '../config/config.ts';
import type { Db } from '../db/client.ts';
import type { Logger } from '../logging/logger.ts';
import type { ProviderDeps } from '../oidc/provider.ts';
import type { ResourceCatalog } from '../resources/cache.ts';

export interface InteractionDeps {
  config: Config;
  db: Db;
  logger: Logger;
  clients: ClientRegistry;
  resources: ResourceCatalog;
  /** the provider currently serving (it is rebuilt when signing keys change) */
  provider: () => Provider;
}

/** Koa routes under /interaction/… (and any other page routes). */
export function interactionRoutes(_deps: InteractionDeps): Middleware {
  return (_ctx, next) => next();
}

/** The provider configuration this domain owns (findAccount, pages, policies). */
export function interactionProviderHooks(_deps: InteractionDeps): Partial<ProviderDeps> {
  return {};
}

/** Called on every provider built (event listeners, prototype hooks). */
export function installInteractionHooks(_provider: Provider, _deps: InteractionDeps): void {}
