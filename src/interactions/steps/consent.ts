// Step 3, consent: what the application asks for (grants.ts: requested ∩
// allowance ∩ roles), approved or denied by the person. First-party clients
// are approved without a screen. The decision is recorded in a Grant and
// reported to deps.onConsentEvent (audit).
import type { Context } from 'koa';
import type { Interaction } from 'oidc-provider';
import { loadAccountForOidc } from '../../accounts/claims.ts';
import { applyAccess, resolveRequestedAccess } from '../grants.ts';
import type { ConsentEvent } from '../index.ts';
import type { InteractionStep, StepKit } from '../kit.ts';
import { epochNow, grantNeedsExtension, grantTtl, refreshPolicyFor } from '../lifetimes.ts';
import { consentContent } from '../pages.ts';

/** The OIDC claims the request asks for that the grant does not hold yet. */
function missingClaims(i: Interaction): string[] {
  const details = i.prompt.details as { missingOIDCClaims?: unknown };
  return Array.isArray(details.missingOIDCClaims) ? details.missingOIDCClaims.filter((c): c is string => typeof c === 'string') : [];
}

/** Where the application lives: the host its redirect URI names (where the browser goes next). */
function redirectHost(i: Interaction): string | undefined {
  const uri = i.params.redirect_uri;
  return typeof uri === 'string' && URL.canParse(uri) ? new URL(uri).host || new URL(uri).protocol : undefined;
}

/**
 * "Not you?": the same authorization request again with prompt=login, so
 * the login form is shown and whoever signs in replaces this session's person.
 */
function switchAccountHref(kit: StepKit, i: Interaction): string {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(i.params)) if (typeof v === 'string' && k !== 'prompt') q.set(k, v);
  q.set('prompt', 'login');
  return `${kit.base}/auth?${q.toString()}`;
}

export function consentStep(kit: StepKit): InteractionStep {
  const { deps } = kit;

  /** Records consent in a Grant and returns its id. */
  async function saveConsent(i: Interaction): Promise<string | undefined> {
    const accountId = i.session?.accountId;
    const clientId = kit.clientId(i);
    const client = await deps.clients.get(clientId);
    if (!accountId || !client || client.disabled) return undefined;
    const { Grant } = deps.provider();
    let grant = i.grantId ? await Grant.find(i.grantId) : undefined;
    if (grant && (grant.accountId !== accountId || grant.clientId !== clientId)) grant = undefined;
    grant ??= new Grant({ accountId, clientId });
    const access = await resolveRequestedAccess(deps, { params: i.params, client, accountId, claims: missingClaims(i) });
    applyAccess(grant, access);
    const ttl = grantTtl(refreshPolicyFor(deps.config.refreshToken, client.refreshTokenTtl), client.grants.includes('refresh_token'));
    if (grantNeedsExtension(grant.exp, ttl, epochNow())) grant.exp = undefined; // saved with a fresh lifetime
    return grant.save();
  }

  /** Tells the audit sink about a consent decision; a failing sink never breaks the flow. */
  function consentEvent(ctx: Context, i: Interaction, type: ConsentEvent['type'], automatic: boolean): void {
    if (!deps.onConsentEvent) return;
    const e: ConsentEvent = {
      type,
      accountId: i.session?.accountId,
      clientId: kit.clientId(i),
      scope: typeof i.params.scope === 'string' ? i.params.scope : undefined,
      automatic,
      ip: ctx.ip,
      requestId: kit.requestId(ctx),
    };
    try {
      void Promise.resolve(deps.onConsentEvent(e)).catch(() => {});
    } catch {
      // ignored
    }
  }

  async function approve(ctx: Context, i: Interaction, automatic = false): Promise<void> {
    const grantId = await saveConsent(i);
    if (!grantId) return kit.expired(ctx);
    consentEvent(ctx, i, 'consent.grant', automatic);
    await kit.finish(ctx, { consent: { grantId } }, true);
  }

  async function show(ctx: Context, i: Interaction): Promise<void> {
    const client = await deps.clients.get(kit.clientId(i));
    const accountId = i.session?.accountId;
    if (!client || client.disabled || !accountId) return kit.expired(ctx);
    // First-party clients never show a consent screen.
    if (client.firstParty) return approve(ctx, i, true);
    const [access, account] = await Promise.all([
      resolveRequestedAccess(deps, { params: i.params, client, accountId, claims: missingClaims(i) }),
      loadAccountForOidc(deps.accounts, accountId),
    ]);
    if (!account) return kit.expired(ctx);
    kit.page(
      ctx,
      200,
      `Allow ${client.name}?`,
      consentContent({
        action: kit.path(i, 'consent'),
        csrf: kit.csrf(i),
        clientName: client.name,
        accountLabel: account.account.email,
        redirectHost: redirectHost(i),
        switchHref: switchAccountHref(kit, i),
        oidcScopes: access.oidcScopes,
        claims: access.claims,
        resources: access.resources,
      }),
    );
  }

  return {
    prompt: 'consent',
    page: { at: (i) => i.prompt.name === 'consent', show },
    forms: {
      /** decision=approve|deny */
      async consent(ctx, i, form) {
        const decision = form.get('decision');
        if (decision === 'deny') {
          consentEvent(ctx, i, 'consent.deny', false);
          return kit.finish(ctx, { error: 'access_denied', error_description: 'End-User denied the consent' }, false);
        }
        if (decision !== 'approve') return kit.message(ctx, 400, 'Not accepted', 'This form was not accepted', 'Choose Allow or Deny.');
        return approve(ctx, i);
      },
    },
  };
}
