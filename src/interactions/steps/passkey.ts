// Passkeys in the sign-in interaction (src/accounts/passkeys.ts does the
// WebAuthn checks):
//
//   POST …/passkey       passwordless: the login page's passkey answer (browser
//                        autofill on the email field, or the "Sign in with a
//                        passkey" button). User verification is required, so it
//                        is two factors: acr urn:gatehouse:acr:mfa.
//   POST …/mfa-passkey   the second factor after a right password (or at a
//                        step-up): a passkey of that same account.
//
// Each answer's challenge was issued for this interaction and purpose and is
// consumed once. Every refusal shows one message; a suspected clone is
// audited by passkeys.ts.
import { completePasskeyLogin, verifyAssertion, type AssertionResult } from '../../accounts/passkeys.ts';
import type { InteractionStep, StepKit } from '../kit.ts';
import { passkeyKeyAmr, pendingLogin } from '../mfa.ts';
import { PASSKEY_FAILED, SIGN_IN_AGAIN } from '../pages.ts';
import { restart, showLoginForm } from './login-form.ts';
import { showVerify } from './mfa.ts';

export function passkeyStep(kit: StepKit): InteractionStep {
  const { deps } = kit;
  const failed = (r: AssertionResult & { ok: false }, ctx: Parameters<typeof kit.audit>[0], purpose: string) => {
    kit.onLoginEvent({
      type: 'login.failure',
      ...(r.accountId ? { accountId: r.accountId } : {}),
      email: '',
      ip: ctx.ip,
      reason: r.reason === 'disabled' ? 'disabled' : 'invalid',
      factor: 'passkey',
    });
    deps.logger.info({ reqId: kit.requestId(ctx), reason: r.reason, purpose }, 'passkey refused');
  };
  return {
    prompt: 'login',
    forms: {
      async passkey(ctx, i, form) {
        const r = await verifyAssertion(deps.db, kit.rp, {
          purpose: 'login',
          binding: i.uid,
          response: form.get('response'),
          ip: ctx.ip,
          requestId: kit.requestId(ctx) ?? null,
        });
        if (!r.ok) {
          failed(r, ctx, 'login');
          return showLoginForm(kit, ctx, i, 400, '', PASSKEY_FAILED);
        }
        await completePasskeyLogin(deps.db, r.accountId, { ip: ctx.ip, onEvent: kit.onLoginEvent });
        return kit.signIn(ctx, r.accountId, form.get('remember') === 'yes', { passkey: passkeyKeyAmr(r.passkey.deviceType), withPassword: false });
      },
      async 'mfa-passkey'(ctx, i, form) {
        const pending = pendingLogin(i);
        if (!pending) return restart(kit, ctx, i, 400, SIGN_IN_AGAIN);
        if (pending.stage !== 'verify') return kit.redirect(ctx, kit.path(i));
        const r = await verifyAssertion(deps.db, kit.rp, {
          purpose: 'mfa',
          binding: i.uid,
          accountId: pending.accountId,
          response: form.get('response'),
          ip: ctx.ip,
          requestId: kit.requestId(ctx) ?? null,
        });
        if (!r.ok) {
          failed(r, ctx, 'mfa');
          return showVerify(kit, ctx, i, 400, PASSKEY_FAILED);
        }
        await completePasskeyLogin(deps.db, r.accountId, { ip: ctx.ip, onEvent: kit.onLoginEvent });
        return kit.signIn(ctx, r.accountId, pending.remember, { passkey: passkeyKeyAmr(r.passkey.deviceType), withPassword: true });
      },
    },
  };
}
