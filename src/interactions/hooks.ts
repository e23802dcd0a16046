// The oidc-provider configuration this domain owns: accounts, grants,
// refresh-token policy, acr values, the pages oidc-provider renders itself
// (errors, logout), and the model hooks installed on every provider built.
import type { Account, Configuration, Grant, KoaContextWithOIDC, RefreshToken } from 'oidc-provider';
import type Provider from 'oidc-provider';
import { loadAccountForOidc } from '../accounts/claims.ts';
import type { ProviderDeps } from '../oidc/provider.ts';
import { basePath, stylesheetUrl } from './assets.ts';
import { applyAccess, resolveRequestedAccess } from './grants.ts';
import { trusted } from './html.ts';
import type { InteractionDeps } from './index.ts';
import { grantNeedsExtension, grantTtl, refreshPolicyFor, refreshTokenTtl, type RefreshPolicy } from './lifetimes.ts';
import { ACR_VALUES } from './mfa.ts';
import { devicePages } from './device.ts';
import { errorContent, layout, loggedOutContent, logoutContent } from './pages.ts';
import { buildInteractionPolicy } from './policy.ts';
import { roleScopePatch, roleTokenClaims } from './tokens.ts';
import type { Patch } from '../oidc/seam.ts';

type Features = NonNullable<Configuration['features']>;
type RpLogout = NonNullable<Features['rpInitiatedLogout']>;

function sendHtml(ctx: KoaContextWithOIDC, body: string): void {
  ctx.type = 'html';
  ctx.set('Cache-Control', 'no-store');
  ctx.body = body;
}

/**
 * Refresh tokens are issued when the client may use the refresh_token grant
 * and the person granted `offline_access` (oidc-provider only keeps that
 * scope when the request could prompt for consent).
 */
export const issueRefreshToken: NonNullable<Configuration['issueRefreshToken']> = (_ctx, client, source) =>
  client.grantTypeAllowed('refresh_token') && source.scopes.has('offline_access');

export function providerHooks(deps: InteractionDeps): Partial<ProviderDeps> {
  const defaults: RefreshPolicy = deps.config.refreshToken;
  const css = stylesheetUrl(deps.config.issuer);
  const clientName = (ctx: KoaContextWithOIDC) => {
    const c = ctx.oidc.client;
    return c ? (typeof c.clientName === 'string' && c.clientName ? c.clientName : c.clientId) : undefined;
  };

  const logoutSource: RpLogout['logoutSource'] = (ctx, form) => {
    // `form` is oidc-provider's own markup (action URL + xsrf token): kept as is.
    sendHtml(ctx, layout('Sign out', logoutContent(trusted(form), clientName(ctx)), css));
  };

  const postLogoutSuccessSource: RpLogout['postLogoutSuccessSource'] = (ctx) => {
    sendHtml(ctx, layout('Signed out', loggedOutContent(clientName(ctx)), css));
  };

  const renderError: Configuration['renderError'] = (ctx, out) => {
    const requestId = typeof ctx.state.requestId === 'string' ? ctx.state.requestId : undefined;
    sendHtml(ctx, layout('Error', errorContent(out, requestId, `${basePath(deps.config.issuer)}/account`), css));
  };

  /**
   * The grant of this session for the client. First-party clients never see
   * a consent screen: their grant is made (or brought up to date with the
   * request and the person's current roles) right here. A grant found close
   * to its end is extended so that it outlives the tokens issued now.
   */
  const loadExistingGrant: Configuration['loadExistingGrant'] = async (ctx) => {
    const { oidc } = ctx;
    const { client, session, account } = oidc;
    if (!client || !session || !account) return undefined;
    const fromConsent = oidc.result?.consent?.grantId;
    const grantId = typeof fromConsent === 'string' && fromConsent ? fromConsent : session.grantIdFor(client.clientId);
    const { Grant } = oidc.provider;
    let grant: Grant | undefined = grantId ? await Grant.find(grantId) : undefined;
    if (grant && (grant.accountId !== account.accountId || grant.clientId !== client.clientId)) grant = undefined;
    const rec = await deps.clients.get(client.clientId);
    if (!rec) return grant;
    let dirty = false;
    if (rec.firstParty) {
      dirty = !grant;
      grant ??= new Grant({ accountId: account.accountId, clientId: client.clientId });
      const access = await resolveRequestedAccess(deps, {
        params: oidc.params ?? {},
        client: rec,
        accountId: account.accountId,
        claims: oidc.requestParamClaims,
        rolesAtMinting: true,
      });
      dirty = applyAccess(grant, access) || dirty;
    }
    const ttl = grantTtl(refreshPolicyFor(defaults, rec.refreshTokenTtl), rec.grants.includes('refresh_token'));
    if (grant && grantNeedsExtension(grant.exp, ttl)) {
      grant.exp = undefined; // saved with a fresh lifetime
      dirty = true;
    }
    if (grant && dirty) await grant.save();
    return grant;
  };

  return {
    findAccount: async (_ctx, sub): Promise<Account | undefined> => {
      const found = await loadAccountForOidc(deps.accounts, sub);
      return found ? { ...found } : undefined;
    },
    loadExistingGrant,
    issueRefreshToken,
    extraTokenClaims: roleTokenClaims,
    renderError,
    logoutSource,
    postLogoutSuccessSource,
    interactionPolicy: buildInteractionPolicy(deps),
    devicePages: devicePages(deps),
    // acr_values_supported; the login result sets the session's acr (routes.ts, mfa.ts)
    acrValues: [...ACR_VALUES],
    ttl: {
      // Defaults; the save hooks below apply a client's own refreshTokenTtl.
      RefreshToken: (_ctx, token) => refreshTokenTtl(defaults, token.iiat),
      Grant: (ctx) => grantTtl(defaults, Boolean(ctx?.oidc?.client?.grantTypeAllowed('refresh_token'))),
    },
  };
}

interface Lifetimed {
  clientId?: string | undefined;
  exp?: number | undefined;
  expiresIn?: number;
}

/**
 * This domain's replacements of oidc-provider methods (installed by
 * src/oidc/seam.ts): role-narrowed scopes when access tokens are minted, and
 * the lifetimes of refresh tokens (idle + absolute, with the client's own)
 * and of grants (they outlive the refresh tokens their client may hold).
 */
export function interactionPatches(deps: InteractionDeps): Patch[] {
  const defaults: RefreshPolicy = deps.config.refreshToken;
  const policyOf = async (clientId: string | undefined) => {
    const rec = clientId ? await deps.clients.get(clientId) : undefined;
    return { policy: refreshPolicyFor(defaults, rec?.refreshTokenTtl), mayRefresh: rec?.grants.includes('refresh_token') ?? false };
  };
  return [
    roleScopePatch(deps),
    {
      method: 'RefreshToken#save',
      why: "refresh tokens expire when idle and at their chain's absolute lifetime, the client's own if it has one",
      wrap: (save) =>
        async function saveRefreshToken(this: RefreshToken & Lifetimed): Promise<string> {
          if (typeof this.exp !== 'number') {
            const { policy } = await policyOf(this.clientId);
            this.expiresIn = refreshTokenTtl(policy, this.iiat);
          }
          return save.call(this) as Promise<string>;
        },
    },
    {
      method: 'Grant#save',
      why: 'a grant outlives the refresh tokens its client may hold',
      wrap: (save) =>
        async function saveGrant(this: Grant & Lifetimed): Promise<string> {
          if (typeof this.exp !== 'number') {
            const { policy, mayRefresh } = await policyOf(this.clientId);
            this.expiresIn = grantTtl(policy, mayRefresh);
          }
          return save.call(this) as Promise<string>;
        },
    },
  ];
}

/** Event listeners this domain adds to every provider built. */
export function listenToProvider(provider: Provider, deps: InteractionDeps): void {
  provider.on('backchannel.error', (_ctx: unknown, err: Error, client: { clientId: string }) => {
    deps.logger.warn({ clientId: client.clientId, err: { name: err.name, message: err.message } }, 'back-channel logout failed');
  });
  provider.on('backchannel.success', (_ctx: unknown, client: { clientId: string }) => {
    deps.logger.info({ clientId: client.clientId }, 'back-channel logout delivered');
  });
}
