// Step 2b, enrolment: a person without MFA, at a sign-in that requires it,
// sets up an authenticator app on the spot (QR code + setup key; a current
// code confirms it), then sees 10 recovery codes once and continues.
//
// Only inside the account's enrolment window (accounts/mfa.ts): otherwise
// whoever knows the password could set up their own authenticator and lock
// the owner out. Outside it the page says to ask an administrator. Both the
// enrolment (in its own transaction) and a refusal are audited.
import type { Context } from 'koa';
import type { Interaction } from 'oidc-provider';
import { MFA_ENROLMENT_WINDOW_DAYS, confirmTotpEnrolment, mfaEnrolmentOpen, newTotpSecret, totpUri } from '../../accounts/mfa.ts';
import { NotFoundError } from '../../kernel/errors.ts';
import { getAccount } from '../../accounts/store.ts';
import { recordAudit } from '../../audit/audit.ts';
import type { InteractionStep, StepKit } from '../kit.ts';
import { epochNow } from '../lifetimes.ts';
import {
  groupSecret,
  openEnrolmentSecret,
  pendingLogin,
  qrDataUri,
  savePendingLogin,
  sealEnrolmentSecret,
  type PendingLogin,
} from '../mfa.ts';
import { ENROL_FAILED, LOGIN_FAILED, SIGN_IN_AGAIN, mfaCodesContent, mfaEnrolContent, mfaUnavailableContent } from '../pages.ts';
import { restart } from './login-form.ts';
import { askSecondFactor } from './mfa.ts';

/** After a right password, for a person without MFA where it is required: the set-up, if the window is open. */
export async function beginEnrolment(kit: StepKit, ctx: Context, i: Interaction, who: { accountId: string; remember: boolean }): Promise<void> {
  if (!(await mfaEnrolmentOpen(kit.deps.db, who.accountId))) return refuse(kit, ctx, i, who.accountId);
  const secret = sealEnrolmentSecret(kit.deps.config.keyEncryptionKey, i.uid, who.accountId, newTotpSecret());
  await savePendingLogin(i, { ...who, at: epochNow(), stage: 'enrol', secret });
  kit.redirect(ctx, kit.path(i));
}

/** The enrolment window is closed: ask an administrator (audited). The login starts over. */
async function refuse(kit: StepKit, ctx: Context, i: Interaction, accountId: string): Promise<void> {
  if (pendingLogin(i)) await savePendingLogin(i, undefined);
  kit.audit(ctx, {
    action: 'mfa.enrol_refused',
    actor: { type: 'user', id: accountId },
    target: { type: 'user', id: accountId },
    details: { reason: 'no_enrolment_window', client: kit.clientId(i) },
  });
  const { byClient } = await kit.mfaRequirement(i);
  kit.page(
    ctx,
    403,
    'Two-step verification is not set up',
    mfaUnavailableContent({
      abortAction: kit.path(i, 'abort'),
      csrf: kit.csrf(i),
      clientName: await kit.clientName(i),
      required: byClient,
      days: MFA_ENROLMENT_WINDOW_DAYS,
    }),
  );
}

async function showEnrol(kit: StepKit, ctx: Context, i: Interaction, pending: PendingLogin, status: number, error?: string): Promise<void> {
  const { db, config } = kit.deps;
  const secret = openEnrolmentSecret(config.keyEncryptionKey, i.uid, pending);
  const account = await getAccount(db, pending.accountId).catch((err: unknown) => {
    if (err instanceof NotFoundError) return undefined;
    throw err;
  });
  if (!secret || !account || account.disabled) return restart(kit, ctx, i, 400, LOGIN_FAILED);
  if (!(await mfaEnrolmentOpen(db, pending.accountId))) return refuse(kit, ctx, i, pending.accountId);
  const { byClient } = await kit.mfaRequirement(i);
  kit.page(
    ctx,
    status,
    'Set up two-step verification',
    mfaEnrolContent({
      action: kit.path(i, 'enrol'),
      abortAction: kit.path(i, 'abort'),
      csrf: kit.csrf(i),
      clientName: await kit.clientName(i),
      qr: await qrDataUri(totpUri(secret, account.email)),
      secret: groupSecret(secret),
      required: byClient,
      ...(pending.stepUp ? { stepUp: { email: account.email, switchAction: kit.path(i, 'switch') } } : {}),
      ...(error ? { error } : {}),
    }),
  );
}

async function showEnrolled(kit: StepKit, ctx: Context, i: Interaction, recoveryCodes?: string[]): Promise<void> {
  kit.page(
    ctx,
    200,
    'Two-step verification is on',
    mfaCodesContent({
      action: kit.path(i, 'continue'),
      csrf: kit.csrf(i),
      clientName: await kit.clientName(i),
      ...(recoveryCodes ? { recoveryCodes } : {}),
    }),
    recoveryCodes ? ['/static/codes.js'] : [],
  );
}

export function enrolStep(kit: StepKit): InteractionStep {
  const { deps } = kit;
  return {
    prompt: 'login',
    page: {
      at: (i) => {
        const stage = i.prompt.name === 'login' ? pendingLogin(i)?.stage : undefined;
        return stage === 'enrol' || stage === 'enrolled';
      },
      show: (ctx, i) => {
        const pending = pendingLogin(i)!;
        return pending.stage === 'enrol' ? showEnrol(kit, ctx, i, pending, 200) : showEnrolled(kit, ctx, i);
      },
    },
    forms: {
      /** the code that confirms the authenticator being set up */
      async enrol(ctx, i, form) {
        const pending = pendingLogin(i);
        if (!pending) return restart(kit, ctx, i, 400, SIGN_IN_AGAIN);
        if (pending.stage !== 'enrol') return kit.redirect(ctx, kit.path(i));
        const secret = openEnrolmentSecret(deps.config.keyEncryptionKey, i.uid, pending);
        if (!secret) return restart(kit, ctx, i, 400, LOGIN_FAILED);
        const { accountId } = pending;
        const r = await confirmTotpEnrolment(
          deps.db,
          { accountId, secret, code: (form.get('code') ?? '').trim() },
          {
            ip: ctx.ip,
            kek: deps.config.keyEncryptionKey,
            onEvent: kit.onLoginEvent,
            // the enrolment and its audit event commit together
            inTransaction: (tx) =>
              recordAudit(tx, {
                action: 'mfa.enrol',
                actor: { type: 'user', id: accountId },
                target: { type: 'user', id: accountId },
                details: { method: 'totp', client: kit.clientId(i) },
                ...kit.auditContext(ctx),
              }),
          },
        );
        if (r.ok) {
          // The codes are in this response only; seen again, the page says they were shown once.
          await savePendingLogin(i, { accountId, remember: pending.remember, at: epochNow(), stage: 'enrolled', method: 'otp' });
          return showEnrolled(kit, ctx, i, r.recoveryCodes);
        }
        if (r.reason === 'invalid') return showEnrol(kit, ctx, i, pending, 400, ENROL_FAILED);
        // Set up meanwhile (another browser): verify with that authenticator instead.
        if (r.reason === 'enrolled') return askSecondFactor(kit, ctx, i, pending);
        if (r.reason === 'no-window') return refuse(kit, ctx, i, accountId);
        return restart(kit, ctx, i, 400, LOGIN_FAILED);
      },
      /** after the recovery codes: signs in */
      async continue(ctx, i) {
        const pending = pendingLogin(i);
        if (!pending) return restart(kit, ctx, i, 400, SIGN_IN_AGAIN);
        if (pending.stage !== 'enrolled') return kit.redirect(ctx, kit.path(i));
        return kit.signIn(ctx, pending.accountId, pending.remember, 'otp');
      },
    },
  };
}
