// Step 2a, the second factor of a person with MFA: a TOTP code or a recovery
// code (accounts/mfa.ts verifySecondFactor: single use, throttled like a
// password, one generic message for every refusal).
import type { Context } from 'koa';
import type { Interaction } from 'oidc-provider';
import { verifySecondFactor } from '../../accounts/mfa.ts';
import { secondFactorOptions } from '../../accounts/passkeys.ts';
import type { InteractionStep, StepKit } from '../kit.ts';
import { epochNow } from '../lifetimes.ts';
import { pendingLogin, savePendingLogin } from '../mfa.ts';
import { MFA_FAILED, MFA_MISSING, SIGN_IN_AGAIN, mfaVerifyContent } from '../pages.ts';
import { restart } from './login-form.ts';

/** After a right password: the interaction waits for the second factor. */
export async function askSecondFactor(
  kit: StepKit,
  ctx: Context,
  i: Interaction,
  who: { accountId: string; remember: boolean; at?: number; stepUp?: boolean },
): Promise<void> {
  await savePendingLogin(i, { accountId: who.accountId, remember: who.remember, at: who.at ?? epochNow(), stage: 'verify', ...(who.stepUp ? { stepUp: true } : {}) });
  kit.redirect(ctx, kit.path(i));
}

/** The second-factor page: a passkey (when the account has one), the authenticator app's code, a recovery code. */
export async function showVerify(kit: StepKit, ctx: Context, i: Interaction, status: number, error?: string): Promise<void> {
  const pending = pendingLogin(i);
  if (!pending) return restart(kit, ctx, i, 400, SIGN_IN_AGAIN);
  const { db } = kit.deps;
  const account = await db.account.findUnique({ where: { id: pending.accountId }, select: { email: true, totpEnabledAt: true } });
  if (!account) return restart(kit, ctx, i, 400, SIGN_IN_AGAIN);
  // a fresh challenge for this page, for this account's passkeys only
  const options = await secondFactorOptions(db, kit.rp, i.uid, pending.accountId);
  kit.page(
    ctx,
    status,
    'Two-step verification',
    mfaVerifyContent({
      action: kit.path(i, 'mfa'),
      abortAction: kit.path(i, 'abort'),
      csrf: kit.csrf(i),
      clientName: await kit.clientName(i),
      totp: account.totpEnabledAt !== null,
      ...(options ? { passkey: { action: kit.path(i, 'mfa-passkey'), options: JSON.stringify(options) } } : {}),
      ...(pending.stepUp ? { stepUp: { email: account.email, switchAction: kit.path(i, 'switch') } } : {}),
      ...(error ? { error } : {}),
    }),
    options ? ['/static/webauthn.js', '/static/passkey.js'] : [],
  );
}

export function mfaStep(kit: StepKit): InteractionStep {
  const { deps } = kit;
  return {
    prompt: 'login',
    page: {
      at: (i) => i.prompt.name === 'login' && pendingLogin(i)?.stage === 'verify',
      show: (ctx, i) => showVerify(kit, ctx, i, 200),
    },
    forms: {
      async mfa(ctx, i, form) {
        const pending = pendingLogin(i);
        if (!pending) return restart(kit, ctx, i, 400, SIGN_IN_AGAIN);
        if (pending.stage !== 'verify') return kit.redirect(ctx, kit.path(i));
        const code = (form.get('code') ?? '').trim();
        if (!code) return showVerify(kit, ctx, i, 400, MFA_MISSING);
        const r = await verifySecondFactor(deps.db, pending.accountId, code, {
          ip: ctx.ip,
          policy: deps.config.login,
          kek: deps.config.keyEncryptionKey,
          onEvent: kit.onLoginEvent,
        });
        if (!r.ok) return showVerify(kit, ctx, i, 400, MFA_FAILED);
        return kit.signIn(ctx, pending.accountId, pending.remember, r.method);
      },
    },
  };
}
