// The interaction policy: oidc-provider's default prompts (login, then
// consent) plus one check of our own.
//
// `account_unavailable`: the session belongs to an account that findAccount
// no longer returns (disabled or deleted). oidc-provider would otherwise go
// on to the consent checks without an account and fail; instead the person
// must sign in again (prompt=none gets login_required).
import { interactionPolicy } from 'oidc-provider';

const { Check, base } = interactionPolicy;

export function buildInteractionPolicy(): interactionPolicy.DefaultPolicy {
  const policy = base();
  const login = policy.get('login');
  if (!login) throw new Error('oidc-provider default policy has no login prompt');
  login.checks.add(
    new Check('account_unavailable', 'End-User authentication is required', 'login_required', (ctx) =>
      Boolean(ctx.oidc.session?.accountId) && !ctx.oidc.account ? Check.REQUEST_PROMPT : Check.NO_NEED_TO_PROMPT,
    ),
    0,
  );
  return policy;
}
