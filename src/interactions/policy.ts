// The interaction policy: oidc-provider's default prompts (login, then
// consent) plus two checks of our own on the login prompt.
//
// `account_unavailable`: the session belongs to an account that findAccount
// no longer returns (disabled or deleted). oidc-provider would otherwise go
// on to the consent checks without an account and fail; instead the person
// must sign in again (prompt=none gets login_required).
//
// `mfa_required`: the session's sign-in did not use a second factor (its acr
// is not urn:gatehouse:acr:mfa) but this request needs one: the client has
// `requireMfa`, or the request asks for the MFA level (mfa.ts). The person
// signs in again — password, then the second factor, enrolling first if they
// have none (prompt=none gets login_required).
import { interactionPolicy } from 'oidc-provider';
import type { InteractionDeps } from './index.ts';
import { ACR_MFA, mfaRequested } from './mfa.ts';

const { Check, base } = interactionPolicy;

export function buildInteractionPolicy(deps: Pick<InteractionDeps, 'clients'>): interactionPolicy.DefaultPolicy {
  const policy = base();
  const login = policy.get('login');
  if (!login) throw new Error('oidc-provider default policy has no login prompt');
  login.checks.add(
    new Check('account_unavailable', 'End-User authentication is required', 'login_required', (ctx) =>
      Boolean(ctx.oidc.session?.accountId) && !ctx.oidc.account ? Check.REQUEST_PROMPT : Check.NO_NEED_TO_PROMPT,
    ),
    0,
  );
  login.checks.add(
    new Check('mfa_required', 'Multi-factor authentication is required', 'login_required', async (ctx) => {
      const { oidc } = ctx;
      if (!oidc.session?.accountId || oidc.session.acr === ACR_MFA) return Check.NO_NEED_TO_PROMPT;
      if (mfaRequested(oidc.params ?? {})) return Check.REQUEST_PROMPT;
      const clientId = oidc.client?.clientId;
      const rec = clientId ? await deps.clients.get(clientId) : undefined;
      return rec?.requireMfa ? Check.REQUEST_PROMPT : Check.NO_NEED_TO_PROMPT;
    }),
  );
  return policy;
}
