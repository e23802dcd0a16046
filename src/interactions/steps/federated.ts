// Signing in through an upstream identity provider ("Continue with N", or an
// email whose domain is routed to a provider).
//
//   POST /interaction/:uid/federate   idp=<id>: discovery, a new upstream
//                                     request (state, nonce, PKCE verifier
//                                     stored server-side, bound to this
//                                     interaction), 303 to the provider
//   GET  /federation/callback         the provider's answer: the request is
//                                     taken once by its state (a replay, a
//                                     forged or an expired state gets a
//                                     page saying so), the code exchanged and
//                                     the ID token checked (openid-client),
//                                     the account found, linked or created
//                                     (src/federation/signin.ts); the result
//                                     is stored in the interaction and the
//                                     browser sent to /interaction/:uid
//   GET  /interaction/:uid            with that result: the interaction
//                                     cookie proves it is the browser that
//                                     started; it signs in (or goes on to the
//                                     second factor, as after a password)
//
// The callback URL is fixed (providers register one redirect URI), so the
// browser binding is the interaction cookie at the last step: a callback
// URL fed to another browser (login CSRF) ends at "sign-in expired".
//
// An unreachable provider gets a page that says so; the login form keeps
// working. Upstream tokens never leave the callback.
import type { Context } from 'koa';
import type { Interaction } from 'oidc-provider';
import { getAccount, recordLogin } from '../../accounts/store.ts';
import type { Actor } from '../../kernel/actor.ts';
import { UpstreamRejectedError, UpstreamUnavailableError } from '../../federation/relying-party.ts';
import { resolveFederatedAccount, type FederatedRefusal } from '../../federation/signin.ts';
import { consumeRequest, findIdp, saveRequest, toIdpView } from '../../federation/store.ts';
import type { UpstreamIdp } from '../../generated/prisma/client.ts';
import { html } from '../html.ts';
import type { InteractionStep, StepKit } from '../kit.ts';
import { epochNow } from '../lifetimes.ts';
import { ACR_PWD, pendingLogin } from '../mfa.ts';
import { beginEnrolment } from './enrol.ts';
import { showLoginForm } from './login-form.ts';
import { askSecondFactor } from './mfa.ts';

/** RFC 8176 has no value for "signed in at another provider"; this one is ours. */
export const AMR_FEDERATED: readonly string[] = ['fed'];

const RESULT_KEY = 'gatehouse_federated_login';
/** How long the browser has from the callback to the interaction page. */
const RESULT_TTL_SECONDS = 300;

interface FederatedLogin {
  accountId: string;
  idp: string;
  at: number;
}

function federatedLogin(i: Interaction, now = epochNow()): FederatedLogin | undefined {
  const r = i.result?.[RESULT_KEY] as Partial<FederatedLogin> | undefined;
  if (!r || typeof r.accountId !== 'string' || typeof r.idp !== 'string' || typeof r.at !== 'number') return undefined;
  if (now - r.at > RESULT_TTL_SECONDS || now < r.at - 60) return undefined;
  return r as FederatedLogin;
}

export const NOT_AVAILABLE = 'That sign-in option is not available. Sign in with your email and password, or choose another option.';

function unavailablePage(kit: StepKit, ctx: Context, idpName: string, back?: string): void {
  ctx.set('Retry-After', '30');
  kit.message(
    ctx,
    503,
    'Sign-in provider unavailable',
    `${idpName} cannot be reached right now`,
    `Signing in with ${idpName} is not possible at the moment. Try again in a few minutes.`,
    back ? html`You can still <a href="${back}">sign in with your email and password</a>.` : 'You can still sign in with your email and password: go back to the application and sign in again.',
  );
}

const REFUSALS: Record<FederatedRefusal, { status: number; heading: string; text: (idp: string) => string }> = {
  no_email: {
    status: 403,
    heading: 'Your email address is needed',
    text: (idp) => `${idp} did not share a valid email address, so Gatehouse cannot create or find your account. Allow access to your email address at ${idp}, or sign in with your email and password.`,
  },
  domain_mismatch: {
    status: 403,
    heading: 'This account cannot sign in here',
    text: (idp) => `Gatehouse accepts ${idp} only for the email domains it is set up for, and your ${idp} email address is not in one of them.`,
  },
  email_unverified: {
    status: 409,
    heading: 'An account with this email address already exists',
    text: (idp) =>
      `${idp} did not confirm that this email address is verified, so Gatehouse will not connect it to the existing account. Sign in with your email and password instead. If you think this is wrong, ask your administrator.`,
  },
  disabled: {
    status: 403,
    heading: 'Your account is disabled',
    text: () => 'Your Gatehouse account has been disabled. Contact your administrator.',
  },
  locked: {
    status: 429,
    heading: 'Sign-in is paused for your account',
    text: () => 'After repeated failed sign-ins, sign-in is paused for a while. Try again later.',
  },
};

/** Sends the browser to the provider (called by the button's form and by email-domain routing). */
export async function startFederation(kit: StepKit, ctx: Context, i: Interaction, idp: UpstreamIdp, loginHint?: string): Promise<void> {
  const { deps } = kit;
  let begun;
  try {
    begun = await kit.relyingParty.begin(idp, loginHint ? { loginHint } : {});
  } catch (err) {
    if (err instanceof UpstreamUnavailableError) return unavailablePage(kit, ctx, idp.name, kit.path(i));
    throw err;
  }
  await saveRequest(deps.db, deps.config.keyEncryptionKey, begun.state, { ...begun.request, idpId: idp.id, interactionUid: i.uid });
  kit.redirect(ctx, begun.url.href);
}

export function federatedStep(kit: StepKit): InteractionStep {
  const { deps } = kit;
  return {
    prompt: 'login',
    page: {
      at: (i) => i.prompt.name === 'login' && !pendingLogin(i) && federatedLogin(i) !== undefined,
      async show(ctx, i) {
        const f = federatedLogin(i)!;
        const account = await getAccount(deps.db, f.accountId).catch(() => undefined);
        if (!account || account.disabled) {
          i.result = {};
          await i.save(Math.max(1, i.exp - epochNow()));
          return showLoginForm(kit, ctx, i, 403, '', REFUSALS.disabled.text(''));
        }
        const who = { accountId: account.id, remember: false };
        const { required } = await kit.mfaRequirement(i);
        if (account.mfaEnabled) return askSecondFactor(kit, ctx, i, who);
        if (required) return beginEnrolment(kit, ctx, i, who);
        await recordLogin(deps.db, account.id, { lastLogin: true });
        const idp = await findIdp(deps.db, f.idp);
        kit.onLoginEvent({ type: 'login.success', accountId: account.id, email: account.email, ip: ctx.ip, ...(idp && { idp: idp.name }) });
        return kit.finish(ctx, { login: { accountId: account.id, amr: [...AMR_FEDERATED], acr: ACR_PWD, remember: false } }, false);
      },
    },
    forms: {
      async federate(ctx, i, form) {
        const id = form.get('idp') ?? '';
        const idp = id ? await findIdp(deps.db, id) : null;
        if (!idp || idp.disabled) return showLoginForm(kit, ctx, i, 400, '', NOT_AVAILABLE);
        return startFederation(kit, ctx, i, idp);
      },
    },
  };
}

/** GET /federation/callback: the provider's answer. */
export function federationCallback(kit: StepKit): (ctx: Context) => Promise<void> {
  const { deps } = kit;
  const invalid = (ctx: Context, heading: string, text: string) =>
    kit.message(ctx, 400, 'Sign-in not completed', heading, text, 'Go back to the application and sign in again.');

  return async (ctx) => {
    ctx.state.route = '/federation/callback';
    const q = ctx.query;
    const state = typeof q.state === 'string' ? q.state : undefined;
    if (!state) return invalid(ctx, 'This sign-in response is not valid', 'It does not carry the sign-in request it answers.');
    const request = await consumeRequest(deps.db, deps.config.keyEncryptionKey, state);
    if (!request) {
      return invalid(ctx, 'This sign-in response cannot be used', 'It was used already, it has expired, or it does not belong to a sign-in started here.');
    }
    const back = `${kit.base}/interaction/${request.interactionUid}`;
    const idp = await findIdp(deps.db, request.idpId);
    if (!idp || idp.disabled) return invalid(ctx, 'This sign-in option is no longer available', NOT_AVAILABLE);

    if (typeof q.error === 'string') {
      const cancelled = q.error === 'access_denied';
      return kit.message(
        ctx,
        cancelled ? 403 : 400,
        'Sign-in not completed',
        cancelled ? `Sign-in with ${idp.name} was cancelled` : `${idp.name} could not sign you in`,
        cancelled ? `${idp.name} did not confirm who you are.` : html`${idp.name} answered with the error <code>${q.error.slice(0, 100)}</code>.`,
        html`<a href="${back}">Back to sign-in</a>`,
      );
    }
    if (typeof q.code !== 'string' || q.code === '') {
      return kit.message(ctx, 400, 'Sign-in not completed', 'This sign-in response is not valid', `The answer from ${idp.name} carries no authorization code.`, html`<a href="${back}">Back to sign-in</a>`);
    }

    let who;
    try {
      who = await kit.relyingParty.complete(idp, ctx.querystring, state, request);
    } catch (err) {
      if (err instanceof UpstreamUnavailableError) return unavailablePage(kit, ctx, idp.name, back);
      if (err instanceof UpstreamRejectedError) {
        return kit.message(
          ctx,
          400,
          'Sign-in not completed',
          `The answer from ${idp.name} could not be verified`,
          'Gatehouse could not confirm who signed in, so it did not sign you in.',
          html`<a href="${back}">Back to sign-in</a>`,
        );
      }
      throw err;
    }

    const actor: Actor = { type: 'system', id: null, scopes: 'all', ip: ctx.ip || null, requestId: kit.requestId(ctx) ?? null };
    const view = toIdpView(idp);
    const outcome = await resolveFederatedAccount(deps.db, actor, view, who);
    if (!outcome.ok) {
      const r = REFUSALS[outcome.reason];
      kit.onLoginEvent({
        type: outcome.reason === 'locked' ? 'login.locked' : 'login.failure',
        ...(outcome.accountId && { accountId: outcome.accountId }),
        email: (outcome.email ?? '').slice(0, 320),
        ip: ctx.ip,
        reason: outcome.reason === 'locked' ? 'locked' : outcome.reason === 'disabled' ? 'disabled' : 'invalid',
        ...(outcome.retryAfterSeconds && { retryAfterSeconds: outcome.retryAfterSeconds }),
        idp: idp.name,
      });
      return kit.message(ctx, r.status, 'Sign-in not completed', r.heading, r.text(idp.name), html`<a href="${back}">Back to sign-in</a>`);
    }

    const interaction = await deps
      .provider()
      .Interaction.find(request.interactionUid)
      .catch(() => undefined);
    if (!interaction) return kit.expired(ctx);
    interaction.result = { [RESULT_KEY]: { accountId: outcome.account.id, idp: idp.id, at: epochNow() } satisfies FederatedLogin };
    await interaction.save(Math.max(1, interaction.exp - epochNow()));
    kit.redirect(ctx, back);
  };
}
