// HTTP routes of the sign-in pages, mounted in front of oidc-provider on one
// @koa/router (below the issuer's path):
//
//   GET  /interaction/:uid           the page of the step the interaction is at
//   POST /interaction/:uid/login     email + password                steps/login.ts
//   POST /interaction/:uid/mfa       code: a TOTP or a recovery code  steps/mfa.ts
//   POST /interaction/:uid/enrol     code: confirms the authenticator steps/enrol.ts
//   POST /interaction/:uid/continue  after enrolment (recovery codes shown): signs in
//   POST /interaction/:uid/consent   decision=approve|deny           steps/consent.ts
//   POST /interaction/:uid/abort     "cancel": back to the application with access_denied
//   POST /interaction/:uid/federate  idp=<id>: on to an upstream provider  steps/federated.ts
//   GET  /federation/callback        the upstream provider's answer        steps/federated.ts
//   POST /interaction/:uid/passkey   a passkey, passwordless (conditional UI) steps/passkey.ts
//   POST /interaction/:uid/mfa-passkey  a passkey as the second factor     steps/passkey.ts
//   GET  /static/gatehouse.css       the only stylesheet (the CSP allows no inline style)
//   GET  /static/*.js                the pages' scripts (assets.ts), same-origin only
//
// Each step (kit.ts InteractionStep) brings its page and its forms; this file
// only mounts them. Every POST is a form (form.ts) that carries the
// interaction's CSRF token (csrf.ts), checked before anything is looked at
// or changed: without it the answer is a 403 page. A stale or foreign
// interaction gets an HTML page that says so; bad bodies, unknown addresses
// and wrong methods get HTML pages too, never a stack trace.
//
// Two-step verification (mfa.ts here, src/accounts/mfa.ts): after a right
// password, a person with MFA enters a code; a person without MFA, when the
// client or the request requires it, sets up an authenticator on the spot
// (inside the account's enrolment window). Between the steps the interaction
// holds a pending login, never a login: oidc-provider only learns who signed
// in, with acr and amr, when the last step finishes the interaction.
//
// Metrics and logs label every interaction request with its route pattern
// below the issuer's path (ctx.state.route): '/interaction/:uid' for the
// pages, '/interaction/:uid/<form>' for the forms.
import Router from '@koa/router';
import type { Context, Middleware, Next } from 'koa';
import { isDatabaseUnavailable, RETRY_AFTER_SECONDS } from '../http/errors.ts';
import type { RouteGroup } from '../http/routes.ts';
import { SCRIPT_PATHS, STYLESHEET_PATH, script, stylesheet as loadStylesheet, type Asset } from './assets.ts';
import { verifyCsrfToken } from './csrf.ts';
import { FormError, formOf, formParser, type Form } from './form.ts';
import type { InteractionDeps } from './index.ts';
import { INTERACTION_ROUTE, StepKit, type FormHandler, type InteractionStep } from './kit.ts';
import { abortStep } from './steps/abort.ts';
import { consentStep } from './steps/consent.ts';
import { enrolStep } from './steps/enrol.ts';
import { federatedStep, federationCallback } from './steps/federated.ts';
import { loginStep } from './steps/login.ts';
import { mfaStep } from './steps/mfa.ts';
import { passkeyStep } from './steps/passkey.ts';

const UID = /^[A-Za-z0-9_-]{1,64}$/;
const FEDERATION_CALLBACK_PATH = '/federation/callback';
const FORM_NAME = /^[a-z][a-z-]*$/;

/** The steps, each with its page and forms. */
function interactionSteps(kit: StepKit): InteractionStep[] {
  return [federatedStep(kit), loginStep(kit), passkeyStep(kit), mfaStep(kit), enrolStep(kit), consentStep(kit), abortStep(kit)];
}

export function createInteractionRoutes(deps: InteractionDeps): RouteGroup {
  const kit = new StepKit(deps);
  const { base } = kit;
  const steps = interactionSteps(kit);
  const css = loadStylesheet();

  const notFound = (ctx: Context) => kit.message(ctx, 404, 'Not found', 'Page not found', 'Go back to the application and sign in again.');

  /** GET /interaction/:uid: the page of the step the interaction is at. */
  async function showCurrentStep(ctx: Context): Promise<void> {
    const i = await kit.load(ctx, ctx.params.uid!);
    if (!i) return kit.expired(ctx);
    const step = steps.find((s) => s.page?.at(i));
    if (step?.page) return step.page.show(ctx, i);
    deps.logger.error({ prompt: i.prompt.name }, 'interaction prompt not supported');
    kit.message(ctx, 500, 'Not available', 'This sign-in step is not available', 'Go back to the application and try again.');
  }

  /** POST /interaction/:uid/<form>: the form read, its CSRF token checked and the interaction loaded before the step runs. */
  const submit =
    (step: InteractionStep, handler: FormHandler) =>
    async (ctx: Context): Promise<void> => {
      let form: Form;
      try {
        form = formOf(ctx);
      } catch (err) {
        if (err instanceof FormError) return kit.message(ctx, err.status, 'Not accepted', 'This form was not accepted', err.message);
        throw err;
      }
      const uid = ctx.params.uid!;
      if (!verifyCsrfToken(deps.config.cookieSecrets, uid, form.get('csrf'))) return kit.forbidden(ctx);
      const i = await kit.load(ctx, uid);
      if (!i) return kit.expired(ctx);
      if (step.prompt && i.prompt.name !== step.prompt) return kit.redirect(ctx, kit.path(i));
      return handler(ctx, i, form);
    };

  function serveAsset(ctx: Context, path: string, asset: Asset): void {
    ctx.state.route = path;
    ctx.set('ETag', asset.etag);
    // The pages link a versioned URL: it never changes, so it may be cached for good.
    ctx.set('Cache-Control', ctx.query.v === asset.version ? 'public, max-age=31536000, immutable' : 'public, max-age=300');
    ctx.set('Cross-Origin-Resource-Policy', 'same-origin');
    ctx.type = asset.type;
    if (ctx.get('If-None-Match') === asset.etag) {
      ctx.status = 304;
      return;
    }
    ctx.status = 200;
    ctx.body = asset.body;
  }

  const router = new Router({ ...(base ? { prefix: base } : {}), strict: true });
  router.get(STYLESHEET_PATH, (ctx: Context) => serveAsset(ctx, STYLESHEET_PATH, css));
  for (const path of SCRIPT_PATHS) {
    const asset = script(path);
    router.get(path, (ctx: Context) => serveAsset(ctx, path, asset));
  }
  router.get(FEDERATION_CALLBACK_PATH, federationCallback(kit));
  router.param('uid', (uid: string, ctx: Context, next: Next) => {
    // the matched pattern below the issuer's path, e.g. /interaction/:uid/login
    const matched = (ctx as Context & { _matchedRoute?: unknown })._matchedRoute;
    ctx.state.route = typeof matched === 'string' ? matched.slice(base.length) : INTERACTION_ROUTE;
    return UID.test(uid) ? next() : notFound(ctx);
  });
  router.get('/interaction/:uid', showCurrentStep);
  const parseForm = formParser();
  const forms = new Set<string>();
  for (const step of steps) {
    for (const [name, handler] of Object.entries(step.forms ?? {})) {
      if (!FORM_NAME.test(name) || forms.has(name)) throw new Error(`interaction form name ${name} is invalid or taken twice`);
      forms.add(name);
      router.post(`/interaction/:uid/${name}`, parseForm, submit(step, handler));
    }
  }
  const dispatch = router.routes() as Middleware;

  /** No route took the request: a wrong method on a known address (405), or an unknown address (404). */
  const unmatched = (ctx: Context) => async () => {
    const allowed = new Set<string>();
    for (const layer of router.match(ctx.path, ctx.method).path) for (const m of layer.methods) allowed.add(m);
    if (allowed.size === 0) return notFound(ctx);
    const allow = ['GET', 'HEAD', 'POST'].filter((m) => allowed.has(m));
    ctx.set('Allow', allow.join(', '));
    if (ctx.path.endsWith(STYLESHEET_PATH) || SCRIPT_PATHS.some((p) => ctx.path.endsWith(p))) {
      ctx.status = 405;
      return;
    }
    kit.message(ctx, 405, 'Not allowed', 'Not allowed', allowed.has('POST') ? 'This address only accepts form submissions.' : 'This page can only be viewed.');
  };

  /** the paths below the issuer's that these routes answer */
  const owns = (path: string): boolean => {
    if (base && path !== base && !path.startsWith(`${base}/`)) return false;
    const rel = path.slice(base.length);
    return rel === STYLESHEET_PATH || rel === FEDERATION_CALLBACK_PATH || (SCRIPT_PATHS as readonly string[]).includes(rel) || rel === '/interaction' || rel.startsWith('/interaction/');
  };

  const middleware: Middleware = async (ctx) => {
    try {
      await dispatch(ctx, unmatched(ctx));
    } catch (err) {
      if (isDatabaseUnavailable(err)) {
        ctx.set('Retry-After', String(RETRY_AFTER_SECONDS));
        return kit.message(ctx, 503, 'Temporarily unavailable', 'Sign-in is temporarily unavailable', 'Please try again in a moment.');
      }
      deps.logger.error({ reqId: ctx.state.requestId, err: { name: (err as Error).name, message: (err as Error).message } }, 'interaction failed');
      kit.message(ctx, 500, 'Something went wrong', 'Something went wrong', 'Go back to the application and try again.', `Request id: ${String(ctx.state.requestId ?? '')}`);
    }
  };
  return { owns, middleware };
}
