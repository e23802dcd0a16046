// Step 1, the password: GET shows the login form, POST …/login checks the
// email and password (accounts/store.ts authenticate: throttled, one generic
// message for every refusal). A right password signs the person in, or goes
// on to the second factor: verification (mfa.ts) for a person with MFA,
// enrolment (enrol.ts) for one without it when this request requires MFA.
// An email whose domain an upstream provider routes (`idps create --domain`)
// goes to that provider instead (federated.ts), without a password.
import { authenticate } from '../../accounts/store.ts';
import { findIdp, idpForEmail } from '../../federation/store.ts';
import type { InteractionStep, StepKit } from '../kit.ts';
import { pendingLogin } from '../mfa.ts';
import { LOGIN_FAILED, LOGIN_MISSING } from '../pages.ts';
import { beginEnrolment } from './enrol.ts';
import { showLoginForm } from './login-form.ts';
import { startFederation } from './federated.ts';
import { askSecondFactor } from './mfa.ts';

export function loginStep(kit: StepKit): InteractionStep {
  const { deps } = kit;
  return {
    prompt: 'login',
    page: {
      at: (i) => i.prompt.name === 'login' && !pendingLogin(i),
      show: (ctx, i) => showLoginForm(kit, ctx, i, 200, typeof i.params.login_hint === 'string' ? i.params.login_hint.slice(0, 320) : ''),
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
          secondFactor: (a) => a.mfaEnabled || required,
        });
        if (!result.ok) return showLoginForm(kit, ctx, i, 400, shownEmail, LOGIN_FAILED);
        const who = { accountId: result.account.id, remember: form.get('remember') === 'yes' };
        if (!result.secondFactor) return kit.signIn(ctx, who.accountId, who.remember, 'pwd');
        if (result.account.mfaEnabled) return askSecondFactor(kit, ctx, i, who);
        return beginEnrolment(kit, ctx, i, who);
      },
    },
  };
}
