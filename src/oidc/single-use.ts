// Single use under concurrency, for every value oidc-provider consumes.
//
// oidc-provider reads a code (refresh token, device code, …), checks that it
// is not `consumed`, does its other checks, and only then consumes it. Two
// requests that race read it unconsumed and would both pass. The adapter's
// consume() is therefore one conditional UPDATE that exactly one caller wins
// (adapter.ts, SecondUseError for everyone else), and this module makes a
// lost race behave exactly like oidc-provider's own second use, whichever
// request lost:
//   - authorization code, device code, CIBA request: the grant and everything
//     issued from it are revoked (RFC 6749 §4.1.2), invalid_grant;
//   - refresh token: the token is destroyed and the grant revoked (reuse,
//     RFC 9700 §4.14.2), invalid_grant "refresh token already used" (which
//     refresh-rotation.ts audits as reuse);
//   - pushed authorization request: invalid_request_uri.
// Revoking also catches what the winner stores after the loser revoked: the
// winner's tokens point at a grant that no longer exists, and every door
// checks the grant (refresh: oidc-provider; JWT access tokens: introspection.ts).
//
// A refresh token rotated by a refresh_token grant request is consumed in the
// same statement that stores its successor and the new access token (issue
// 18, adapter.ts): its consume() is deferred, and the access token's save()
// writes it. The race is decided there, by the same conditional UPDATE, so a
// lost race surfaces from AccessToken#save and gets the same answer.
import type { KoaContextWithOIDC } from 'oidc-provider';
import { errors } from 'oidc-provider';
import { deferNextConsume, flushDeferredConsume, SecondUseError } from './adapter.ts';
import { currentRequest, revokeGrant } from './internals.ts';
import type { Patch } from './seam.ts';

interface Consumable {
  grantId?: string;
  consume(): Promise<void>;
  destroy(): Promise<void>;
}

type ModelName = 'AuthorizationCode' | 'DeviceCode' | 'BackchannelAuthenticationRequest' | 'RefreshToken' | 'PushedAuthorizationRequest';

/** oidc-provider's wording for each model's second use (lib/helpers/grant_source.js, grants/refresh_token.js). */
const SECOND_USE: Record<ModelName, () => Error> = {
  AuthorizationCode: () => new errors.InvalidGrant('authorization code already consumed'),
  DeviceCode: () => new errors.InvalidGrant('device code already consumed'),
  BackchannelAuthenticationRequest: () => new errors.InvalidGrant('backchannel authentication request already consumed'),
  RefreshToken: () => new errors.InvalidGrant('refresh token already used'),
  PushedAuthorizationRequest: () => new errors.InvalidRequestUri('request_uri is invalid, expired, or was already used'),
};

/** A refresh_token grant request of oidc-provider's token endpoint. */
function isRefreshGrant(ctx: KoaContextWithOIDC | undefined): ctx is KoaContextWithOIDC {
  return ctx?.oidc?.route === 'token' && ctx.oidc.params?.grant_type === 'refresh_token';
}

/** The consume() of every consumable model, made single-use, and the save that writes a deferred one (installed by seam.ts). */
export function singleUsePatches(): Patch[] {
  const consumes: Patch[] = (Object.keys(SECOND_USE) as ModelName[]).map((name) => ({
    method: `${name}#consume` as const,
    why: 'a lost race for a single-use value is a second use: revoke, refuse',
    wrap: (consume) =>
      async function consumeOnce(this: Consumable) {
        try {
          if (name === 'RefreshToken') {
            // rotation: written with the successor and the access token by AccessToken#save below
            const ctx = currentRequest();
            if (isRefreshGrant(ctx)) deferNextConsume(ctx);
          }
          await consume.call(this);
        } catch (err) {
          if (!(err instanceof SecondUseError)) throw err;
          await lostRace(name, this);
          throw SECOND_USE[name]();
        }
      },
  }));
  const writeRotation: Patch = {
    method: 'AccessToken#save',
    why: 'a rotated refresh token is consumed in the statement that stores its successor and this access token',
    wrap: (save) =>
      async function saveWithRotation(this: unknown, ...args: unknown[]) {
        const ctx = currentRequest();
        try {
          const value: unknown = await save.apply(this, args);
          // a JWT access token is not stored by the adapter: the rotation is written here
          if (ctx) await flushDeferredConsume(ctx);
          return value;
        } catch (err) {
          if (!(err instanceof SecondUseError) || err.model !== 'RefreshToken' || !isRefreshGrant(ctx)) throw err;
          const rotated = ctx.oidc.entities.RotatedRefreshToken as Consumable | undefined;
          if (rotated) await lostRace('RefreshToken', rotated);
          throw SECOND_USE.RefreshToken();
        }
      },
  };
  return [...consumes, writeRotation];
}

async function lostRace(name: ModelName, value: Consumable): Promise<void> {
  if (name === 'PushedAuthorizationRequest') return;
  const ctx = currentRequest();
  const revoke = ctx && value.grantId ? revokeGrant(ctx, value.grantId) : Promise.resolve();
  await Promise.all([name === 'RefreshToken' ? value.destroy() : undefined, revoke]);
}
