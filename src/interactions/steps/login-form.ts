// The login form: the first step's page, and where the later steps send a
// person back to (with a message) when their pending login is gone.
import type { Context } from 'koa';
import type { Interaction } from 'oidc-provider';
import { enabledIdps } from '../../federation/store.ts';
import { loginOptions } from '../../accounts/passkeys.ts';
import type { StepKit } from '../kit.ts';
import { savePendingLogin } from '../mfa.ts';
import { LOGIN_FAILED, LOGIN_FAILED_SIGNUP_HINT, loginContent } from '../pages.ts';

export async function showLoginForm(kit: StepKit, ctx: Context, i: Interaction, status: number, email: string, error?: string): Promise<void> {
  const { config } = kit.deps;
  // the account pages (src/lifecycle/routes.ts) name the application the person came from
  const from = new URLSearchParams({ client_id: kit.clientId(i) }).toString();
  const idps = await enabledIdps(kit.deps.db);
  // A fresh passwordless challenge for this page (single use, bound to the interaction).
  const options = await loginOptions(kit.deps.db, kit.rp, i.uid);
  kit.page(
    ctx,
    status,
    'Sign in',
    loginContent({
      action: kit.path(i, 'login'),
      abortAction: kit.path(i, 'abort'),
      csrf: kit.csrf(i),
      email,
      clientName: await kit.clientName(i),
      ...(error ? { error: error === LOGIN_FAILED && config.signup === 'open' ? `${error} ${LOGIN_FAILED_SIGNUP_HINT}` : error } : {}),
      ...(config.mail.enabled ? { resetHref: `${kit.base}/reset?${from}` } : {}),
      ...(config.signup === 'open' ? { signupHref: `${kit.base}/signup?${from}` } : {}),
      providers: idps.map((p) => ({ id: p.id, name: p.name })),
      federateAction: kit.path(i, 'federate'),
      passwordOptional: idps.some((p) => p.domains.length > 0),
      passkeyAction: kit.path(i, 'passkey'),
      passkeyOptions: JSON.stringify(options),
    }),
    ['/static/webauthn.js', '/static/passkey.js'],
  );
}

/** The pending login is gone (expired, or its account): back to the login form. */
export async function restart(kit: StepKit, ctx: Context, i: Interaction, status = 200, error?: string): Promise<void> {
  await savePendingLogin(i, undefined);
  return showLoginForm(kit, ctx, i, status, '', error);
}
