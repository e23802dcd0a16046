// The seam between Gatehouse and oidc-provider: every method of oidc-provider
// that Gatehouse replaces, replaced here, in one stated order. Everything
// else goes through oidc-provider's documented configuration (provider.ts)
// and events; the few internal files it must reach are in internals.ts, which
// only the oidc domain imports.
//
// Each domain says WHAT it changes as a Patch: which method, why, and a
// wrapper of the original (the wrapper calls the original to keep the
// library's own behaviour). installPatches() checks that each method still
// exists on this oidc-provider version (so an upgrade that renames one fails
// at start-up, naming it) and installs the patches in REPLACED_METHODS order;
// patches of the same method in the order given, the first innermost.
// test/oidc/seam.test.ts holds one contract test per replaced method.
import type Provider from 'oidc-provider';
import { checkInternals } from './internals.ts';

/** Every replaced method, `Model#method` (instances) or `Model.method` (static), in installation order. */
export const REPLACED_METHODS = [
  // single use under concurrency (single-use.ts)
  'AuthorizationCode#consume',
  'DeviceCode#consume',
  'BackchannelAuthenticationRequest#consume',
  'PushedAuthorizationRequest#consume',
  'RefreshToken#consume',
  // the client registry (clients.ts)
  'Client.find',
  'Client#compareClientSecret',
  // minting: grant-bound JWT ids and rows (introspection.ts), role-narrowed scopes
  // (interactions/tokens.ts), lifetimes (interactions/hooks.ts), the rotated refresh
  // token's deferred consume written with the new tokens (single-use.ts, innermost)
  'AccessToken#generateTokenId',
  'AccessToken#save',
  'RefreshToken#save',
  'Grant#save',
  // finding: JWT access tokens (introspection.ts), the refresh retry (refresh-rotation.ts)
  'AccessToken.find',
  'ClientCredentials.find',
  'RefreshToken.find',
] as const;

export type ReplacedMethod = (typeof REPLACED_METHODS)[number];

// oidc-provider's methods have every shape; the wrappers say theirs.
// eslint-disable-next-line @typescript-eslint/no-explicit-any
type AnyMethod = (this: any, ...args: any[]) => any;

export interface Patch {
  method: ReplacedMethod;
  /** one line: why Gatehouse changes it */
  why: string;
  /** the replacement, given the original (already bound to its class for static methods) */
  wrap(original: AnyMethod): AnyMethod;
}

const installed = new WeakMap<Provider, Patch[]>();

function locate(provider: Provider, method: ReplacedMethod): { holder: Record<string, unknown>; name: string; isStatic: boolean } {
  const isStatic = method.includes('.');
  const [model, name] = method.split(isStatic ? '.' : '#') as [string, string];
  const cls = (provider as unknown as Record<string, { prototype: Record<string, unknown> } | undefined>)[model];
  if (!cls) throw new Error(`oidc-provider internals changed: ${model} is not a model of this provider; adapt src/oidc/seam.ts`);
  return { holder: isStatic ? (cls as unknown as Record<string, unknown>) : cls.prototype, name, isStatic };
}

/** The original implementation of a replaced method, for the contract tests (on a provider no patch touched). */
export function methodOf(provider: Provider, method: ReplacedMethod): unknown {
  const { holder, name } = locate(provider, method);
  return holder[name];
}

/** Installs the patches on a provider just built (provider.ts buildProvider); at most once per provider. */
export function installPatches(provider: Provider, patches: readonly Patch[]): void {
  if (installed.has(provider)) throw new Error('installPatches: this provider is patched already');
  checkInternals();
  const order = (p: Patch) => REPLACED_METHODS.indexOf(p.method);
  const ordered = patches.map((p, i) => ({ p, i })).sort((a, b) => order(a.p) - order(b.p) || a.i - b.i);
  for (const { p } of ordered) {
    const { holder, name, isStatic } = locate(provider, p.method);
    const original = holder[name];
    if (typeof original !== 'function') {
      throw new Error(`oidc-provider internals changed: ${p.method} is not a method any more; adapt src/oidc/seam.ts`);
    }
    holder[name] = p.wrap(isStatic ? (original as AnyMethod).bind(holder) : (original as AnyMethod));
  }
  installed.set(provider, ordered.map(({ p }) => p));
}

/** The patches installed on a provider, in installation order (contract tests, diagnostics). */
export function patchesOf(provider: Provider): readonly Patch[] {
  return installed.get(provider) ?? [];
}
