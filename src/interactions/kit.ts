// What every step of the sign-in interaction shares (steps/*.ts): page
// rendering, the interaction lookup, CSRF tokens, redirects, finishing the
// interaction, and the event sinks (logs, metrics, audit).
//
// A step is a small object (InteractionStep): the page it shows when the
// interaction is at that step (GET /interaction/:uid), and the forms it
// answers (POST /interaction/:uid/<form>). routes.ts mounts them on one
// @koa/router; a new step (passkeys, invitations, …) is one more module in
// its list.
import type { Context } from 'koa';
import { errors, type Interaction } from 'oidc-provider';
import type { LoginEvent } from '../accounts/store.ts';
import { recordAudit, type AuditEventInput } from '../audit/audit.ts';
import { RelyingParty } from '../federation/relying-party.ts';
import { guardedFetch } from '../http/outbound.ts';
import { relyingPartyOf, type RelyingParty as PasskeyRelyingParty } from '../accounts/passkeys.ts';
import { basePath, scriptUrl, stylesheetUrl, type ScriptPath } from './assets.ts';
import { csrfToken } from './csrf.ts';
import type { Form } from './form.ts';
import type { HtmlValue, SafeHtml } from './html.ts';
import type { InteractionDeps } from './index.ts';
import { ACR_MFA, ACR_PWD, AMR_PASSWORD, AMR_RECOVERY, AMR_TOTP, mfaRequested } from './mfa.ts';
import { messageContent, sendPage, wayBack } from './pages.ts';

/** The metrics and log label of every interaction page and form (PRODUCT.md: the login pages' route). */
export const INTERACTION_ROUTE = '/interaction/:uid';

export type FormHandler = (ctx: Context, i: Interaction, form: Form) => Promise<void>;

export interface InteractionStep {
  /** its forms belong to this prompt; one posted at another prompt is sent back to the current step */
  prompt?: 'login' | 'consent';
  /** the page GET /interaction/:uid shows while the interaction is at this step */
  page?: {
    at(i: Interaction): boolean;
    show(ctx: Context, i: Interaction): Promise<void>;
  };
  /** the forms it answers: POST /interaction/:uid/<name> (CSRF already checked, interaction loaded) */
  forms?: Record<string, FormHandler>;
}

/** How the person proved who they are, when the interaction ends with a login. */
export type SignInMethod = 'pwd' | 'otp' | 'recovery' | { passkey: 'hwk' | 'swk'; withPassword: boolean };

type InteractionResult = Parameters<ReturnType<InteractionDeps['provider']>['interactionResult']>[2];

export class StepKit {
  /** the issuer URL's path ('' at the root): every page URL starts with it */
  readonly base: string;
  /** logs login outcomes and hands them to deps.onLoginEvent (audit, metrics) */
  readonly onLoginEvent: (e: LoginEvent) => void;
  /** Gatehouse as a relying party of upstream identity providers (its requests go through the outbound guard) */
  readonly relyingParty: RelyingParty;
  private readonly stylesheet: string;

  constructor(readonly deps: InteractionDeps) {
    this.base = basePath(deps.config.issuer);
    this.relyingParty = new RelyingParty({
      kek: deps.config.keyEncryptionKey,
      issuer: deps.config.issuer,
      fetch: guardedFetch(deps.config.outboundAllowlist, deps.logger),
      logger: deps.logger,
    });
    this.stylesheet = stylesheetUrl(deps.config.issuer);
    this.onLoginEvent = loginEventSink(deps);
  }

  // ------------------------------------------------------------- pages

  page(ctx: Context, status: number, title: string, content: SafeHtml, scripts: readonly ScriptPath[] = []): void {
    sendPage(ctx, status, title, content, this.stylesheet, scripts.map((p) => scriptUrl(this.deps.config.issuer, p)));
  }

  /** The relying party of passkeys: the issuer. */
  get rp(): PasskeyRelyingParty {
    return relyingPartyOf(this.deps.config.issuer);
  }

  message(ctx: Context, status: number, title: string, heading: string, ...paragraphs: HtmlValue[]): void {
    this.page(ctx, status, title, messageContent(heading, ...paragraphs));
  }

  expired(ctx: Context): void {
    this.message(
      ctx,
      400,
      'Sign-in expired',
      'This sign-in request has expired',
      'It was completed already, it timed out, or it was started in another browser.',
      'Go back to the application and sign in again.',
      wayBack(`${this.base}/account`),
    );
  }

  forbidden(ctx: Context): void {
    this.message(
      ctx,
      403,
      'Form not accepted',
      'This form was not accepted',
      'It did not come from this sign-in page, or the page is out of date.',
      'Go back, reload the page and try again.',
      wayBack(`${this.base}/account`),
    );
  }

  redirect(ctx: Context, to: string): void {
    ctx.set('Cache-Control', 'no-store');
    ctx.status = 303;
    ctx.redirect(to);
  }

  /** The URL of the interaction's page, or of one of its forms. */
  path(i: Interaction, form?: string): string {
    return `${this.base}/interaction/${i.uid}${form ? `/${form}` : ''}`;
  }

  csrf(i: Interaction): string {
    return csrfToken(this.deps.config.cookieSecrets, i.uid);
  }

  // ------------------------------------------------------- interaction

  /** The interaction behind the request's cookie, if it is the one in the URL. */
  async load(ctx: Context, uid: string): Promise<Interaction | undefined> {
    try {
      const interaction = await this.deps.provider().interactionDetails(ctx.req, ctx.res);
      return interaction.uid === uid ? interaction : undefined;
    } catch (err) {
      if (err instanceof errors.SessionNotFound) return undefined;
      throw err;
    }
  }

  clientId(i: Interaction): string {
    return typeof i.params.client_id === 'string' ? i.params.client_id : '';
  }

  async clientName(i: Interaction): Promise<string | undefined> {
    return (await this.deps.clients.get(this.clientId(i)))?.name;
  }

  /** Is a second factor required for this request, whoever signs in? (by the client, or by the request's acr) */
  async mfaRequirement(i: Interaction): Promise<{ required: boolean; byClient: boolean }> {
    const byClient = (await this.deps.clients.get(this.clientId(i)))?.requireMfa === true;
    return { required: byClient || mfaRequested(i.params), byClient };
  }

  /** Ends the interaction with `result` and sends the browser back to oidc-provider. */
  async finish(ctx: Context, result: InteractionResult, merge: boolean): Promise<void> {
    const to = await this.deps.provider().interactionResult(ctx.req, ctx.res, result, { mergeWithLastSubmission: merge });
    this.redirect(ctx, to);
  }

  /** Signs the person in: the interaction's login result, with how they proved who they are (acr, amr). */
  signIn(ctx: Context, accountId: string, remember: boolean, how: SignInMethod, federated = false): Promise<void> {
    const byFactor =
      typeof how === 'object'
        ? how.withPassword
          ? ['pwd', how.passkey, 'mfa']
          : [how.passkey, 'user', 'mfa']
        : how === 'otp'
          ? AMR_TOTP
          : how === 'recovery'
            ? AMR_RECOVERY
            : AMR_PASSWORD;
    // after an upstream provider (steps/federated.ts) the first factor is "fed", not "pwd"
    const amr = federated ? ['fed', ...byFactor.filter((m) => m !== 'pwd')] : byFactor;
    return this.finish(ctx, { login: { accountId, amr: [...amr], acr: how === 'pwd' ? ACR_PWD : ACR_MFA, remember } }, false);
  }

  // ------------------------------------------------------------ events

  requestId(ctx: Context): string | undefined {
    return typeof ctx.state.requestId === 'string' ? ctx.state.requestId : undefined;
  }

  /** The request's context for an audit event (address, request id). */
  auditContext(ctx: Context): Pick<AuditEventInput, 'ip' | 'requestId'> {
    return { ip: ctx.ip, requestId: this.requestId(ctx) ?? null };
  }

  /** Writes an audit event after the response; a failing write is logged, never breaks the page. */
  audit(ctx: Context, e: Omit<AuditEventInput, 'ip' | 'requestId'>): void {
    void recordAudit(this.deps.db, { ...e, ...this.auditContext(ctx) }).catch((err: Error) =>
      this.deps.logger.warn({ reqId: this.requestId(ctx), action: e.action, err: { message: err.message } }, 'audit write failed'),
    );
  }
}

/** Logs login outcomes (no passwords, no emails: a mistyped password often lands in the email field). */
function loginEventSink(deps: InteractionDeps): (e: LoginEvent) => void {
  return (e) => {
    const entry = {
      event: e.type,
      ...(e.accountId ? { accountId: e.accountId } : {}),
      ...(e.reason ? { reason: e.reason } : {}),
      ...(e.factor ? { factor: e.factor } : {}),
      ...(e.idp ? { idp: e.idp } : {}),
      ...(e.ip ? { ip: e.ip } : {}),
      ...(e.lockouts?.length ? { lockouts: e.lockouts.map((l) => ({ kind: l.kind, lockCount: l.lockCount, retryAfterSeconds: l.retryAfterSeconds })) } : {}),
      ...(e.retryAfterSeconds ? { retryAfterSeconds: e.retryAfterSeconds } : {}),
    };
    if (e.type === 'login.success') deps.logger.info(entry, 'login succeeded');
    else deps.logger.warn(entry, e.type === 'login.locked' ? 'login refused: locked' : 'login failed');
    if (deps.onLoginEvent) {
      try {
        void Promise.resolve(deps.onLoginEvent(e)).catch(() => {});
      } catch {
        // a failing sink must not break logins
      }
    }
  };
}
