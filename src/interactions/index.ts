// Login, consent and logout: the pages people see, and the oidc-provider
// hooks that go with them.
//
//   routes.ts    /interaction/:uid pages and their form posts on @koa/router, the stylesheet
//   steps/       one module per step: login, mfa (verify), enrol, consent, abort;
//                each brings its page and its forms (kit.ts InteractionStep)
//   kit.ts       what the steps share: pages, interaction lookup, CSRF, finishing, events
//   form.ts      form bodies (@koa/bodyparser, size and depth limits)
//   mfa.ts       two-step verification in the interaction: when it is needed,
//                acr/amr values, the pending login between password and code
//   policy.ts    login prompt checks (account_unavailable, mfa_required)
//   hooks.ts     findAccount, grants (first-party clients skip consent),
//                refresh-token policy, acr values, error and logout pages
//   tokens.ts    roles on APIs that require them (scope + `roles` claim)
//   grants.ts    what a consent grants: requested ∩ allowance ∩ roles
//   device.ts    the device flow's pages (/device) and its user-code throttle
import type Provider from 'oidc-provider';
import type { AccountDirectory } from '../accounts/cache.ts';
import type { LoginEvent } from '../accounts/store.ts';
import type { ClientRegistry } from '../clients/registry.ts';
import type { Config } from '../config/config.ts';
import type { Db } from '../db/client.ts';
import type { RouteGroup } from '../http/routes.ts';
import type { Logger } from '../logging/logger.ts';
import type { ProviderDeps } from '../oidc/provider.ts';
import type { ResourceCatalog } from '../resources/cache.ts';
import { interactionPatches, listenToProvider, providerHooks } from './hooks.ts';
import type { Patch } from '../oidc/seam.ts';
import { createInteractionRoutes } from './routes.ts';
import { deviceCodeGuard } from './device.ts';

export interface InteractionDeps {
  config: Config;
  db: Db;
  logger: Logger;
  clients: ClientRegistry;
  resources: ResourceCatalog;
  /** cached account look-ups (findAccount, consent page) */
  accounts: AccountDirectory;
  /** the provider currently serving (it is rebuilt when signing keys change) */
  provider: () => Provider;
  /**
   * Receives every login outcome (success, failure, locked), after it is
   * logged. For the audit domain and metrics; errors it throws are ignored.
   */
  onLoginEvent?: (e: LoginEvent) => void | Promise<void>;
  /** Receives consent decisions (approved or denied), for the audit trail. */
  onConsentEvent?: (e: ConsentEvent) => void | Promise<void>;
}

export interface ConsentEvent {
  type: 'consent.grant' | 'consent.deny';
  accountId: string | undefined;
  clientId: string;
  /** the scopes asked for (granted ones for consent.grant are in the grant) */
  scope: string | undefined;
  /** first-party clients are approved without a screen */
  automatic: boolean;
  ip: string;
  requestId: string | undefined;
}

/** Koa routes under /interaction/… (and the stylesheet they use). */
export function interactionRoutes(deps: InteractionDeps): RouteGroup {
  return createInteractionRoutes(deps);
}

/** POST /device: the user-code guard in front of oidc-provider's device page (device.ts). */
export function deviceRoutes(deps: InteractionDeps): RouteGroup {
  return deviceCodeGuard(deps);
}

/** The provider configuration this domain owns (findAccount, pages, policies). */
export function interactionProviderHooks(deps: InteractionDeps): Partial<ProviderDeps> {
  return providerHooks(deps);
}

/** This domain's replacements of oidc-provider methods (src/oidc/seam.ts installs them). */
export function interactionProviderPatches(deps: InteractionDeps): Patch[] {
  return interactionPatches(deps);
}

/** Called on every provider built: event listeners. */
export function installInteractionListeners(provider: Provider, deps: InteractionDeps): void {
  listenToProvider(provider, deps);
}
