// Step 1, the password: GET shows the login form, POST …/login checks the
// email and password (accounts/store.ts authenticate: throttled, one generic
// message for every refusal). A right password signs the person in, or goes
// on to the second factor: verification (mfa.ts) for a person with MFA,
// enrolment (enrol.ts) for one without it when this request requires MFA.
// An email whose domain an upstream provider routes (`idps create --domain`)
// goes to that provider instead (federated.ts), without a password.
import type { Context } from 'koa';
import type { Interaction } from 'oidc-provider';
import { countPasskeys } from '../../accounts/passkeys.ts';
import { authenticate } from '../../accounts/store.ts';
import { findIdp, idpForEmail } from '../../federation/store.ts';
import type { InteractionStep, StepKit } from '../kit.ts';
import { markSwitchAccount, pendingLogin, switchingAccount } from '../mfa.ts';
import { LOGIN_FAILED, LOGIN_MISSING } from '../pages.ts';
import { beginEnrolment } from './enrol.ts';
import { showLoginForm } from './login-form.ts';
import { startFederation } from './federated.ts';
import { askSecondFactor } from './mfa.ts';

export function loginStep(kit: StepKit): InteractionStep {
  const { deps } = kit;

  /**
   * A step-up: the browser's session has a person signed in with a password
   * only, and this request needs a second factor (policy.ts mfa_required).
   * They are asked only for the second factor (or set one up), not for their
   * password again. "Not you?" (switch) shows the login form instead.
   */
  async function stepUp(ctx: Context, i: Interaction): Promise<boolean> {
    const accountId = i.session?.accountId;
    if (!accountId || switchingAccount(i) || !i.prompt.reasons.includes('mfa_required')) return false;
    const account = await deps.db.account.findUnique({ where: { id: accountId }, select: { disabled: true, totpEnabledAt: true } });
    if (!account || account.disabled) return false;
    const who = { accountId, remember: false, stepUp: true };
    if (account.totpEnabledAt !== null || (await countPasskeys(deps.db, accountId)) > 0) await askSecondFactor(kit, ctx, i, who);
    else await beginEnrolment(kit, ctx, i, who);
    return true;
  }

  return {
    prompt: 'login',
    page: {
      at: (i) => i.prompt.name === 'login' && !pendingLogin(i),
      show: async (ctx, i) => {
        if (await stepUp(ctx, i)) return;
        return showLoginForm(kit, ctx, i, 200, typeof i.params.login_hint === 'string' ? i.params.login_hint.slice(0, 320) : '');
      },
    },
    forms: {
      async login(ctx, i, form) {
        const email = form.get('login') ?? '';
        const password = form.get('password') ?? '';
        const shownEmail = email.trim().slice(0, 320);
        // An email whose domain is routed to an upstream provider signs in there, whatever the password field holds.
        const routed = email.trim() ? await idpForEmail(deps.db, shownEmail) : undefined;
        const idp = routed ? await findIdp(deps.db, routed.id) : null;
        if (idp) return startFederation(kit, ctx, i, idp, shownEmail);
        if (!email.trim() || !password) return showLoginForm(kit, ctx, i, 400, shownEmail, LOGIN_MISSING);
        const { required } = await kit.mfaRequirement(i);
        const result = await authenticate(deps.db, email, password, {
          ip: ctx.ip,
          policy: deps.config.login,
          onEvent: kit.onLoginEvent,
          // a person with an authenticator app or a passkey always gives a second factor
          secondFactor: async (a) => a.mfaEnabled || required || (await countPasskeys(deps.db, a.id)) > 0,
        });
        if (!result.ok) return showLoginForm(kit, ctx, i, 400, shownEmail, LOGIN_FAILED);
        const who = { accountId: result.account.id, remember: form.get('remember') === 'yes' };
        if (!result.secondFactor) return kit.signIn(ctx, who.accountId, who.remember, 'pwd');
        if (result.account.mfaEnabled || (await countPasskeys(deps.db, who.accountId)) > 0) return askSecondFactor(kit, ctx, i, who);
        return beginEnrolment(kit, ctx, i, who);
      },
      /** "Not you?" at a step-up: the login form, for another person */
      async switch(ctx, i) {
        await markSwitchAccount(i);
        return kit.redirect(ctx, kit.path(i));
      },
    },
  };
}
