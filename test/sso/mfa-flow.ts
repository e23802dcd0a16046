// The browser side of two-step verification, shared by the MFA tests
// (test/sso/mfa.test.ts, test/security/mfa-*.test.ts): recognising the
// pages, reading the setup key and recovery codes, submitting codes.
import { decodeJwt, type JWTPayload } from 'jose';
import { generate } from 'otplib';
import { expect } from 'vitest';
import type { TestApp } from '../helpers/app.ts';
import {
  Browser,
  PASSWORD,
  authorize,
  createUser,
  csrfOf,
  exchangeCode,
  formAction,
  isLoginPage,
  page,
  pkce,
  redirect,
  submitLogin,
  type AuthParams,
  type Page,
  type Step,
  type TestClient,
} from './flow.ts';

export const ACR_PWD = 'urn:gatehouse:acr:pwd';
export const ACR_MFA = 'urn:gatehouse:acr:mfa';
export const MFA_FAILED = 'That code is not valid';
export const LOGIN_FAILED = 'Email or password is incorrect';

export const isEnrolPage = (p: Page) => /<form[^>]*action="[^"]*\/enrol"/.test(p.html);
export const isVerifyPage = (p: Page) => /<form[^>]*action="[^"]*\/mfa"/.test(p.html) && /name="code"/.test(p.html);
export const isCodesPage = (p: Page) => /<form[^>]*action="[^"]*\/continue"/.test(p.html);

/** The setup key shown on the enrolment page (grouped by 4 for typing). */
export function secretOf(p: Page): string {
  const m = /id="totp-secret">([A-Z2-7 ]+)</.exec(p.html);
  if (!m) throw new Error('no setup key on the page');
  return m[1]!.replace(/ /g, '');
}

export function qrSrcOf(p: Page): string {
  const m = /<img class="qr" src="([^"]+)"/.exec(p.html);
  if (!m) throw new Error('no QR image on the page');
  return m[1]!;
}

export function recoveryCodesOf(p: Page): string[] {
  const list = /<ul class="codes" id="recovery-codes">([\s\S]*?)<\/ul>/.exec(p.html);
  return list ? [...list[1]!.matchAll(/<code>([^<]+)<\/code>/g)].map((m) => m[1]!) : [];
}

const now = () => Math.floor(Date.now() / 1000);

/** The code of `secret` `steps` 30-second steps from now (the server accepts −1..+1). */
export const totp = (secret: string, steps = 0) => generate({ secret, epoch: now() + steps * 30 });

/** A 6-digit code that is none of the codes the server would accept now. */
export async function wrongCode(secret: string): Promise<string> {
  const valid = new Set(await Promise.all([-2, -1, 0, 1, 2].map((s) => totp(secret, s))));
  for (let d = 0; d < 10; d++) {
    const c = String(d).repeat(6);
    if (!valid.has(c)) return c;
  }
  throw new Error('unreachable');
}

export async function submitCode(b: Browser, p: Page, suffix: '/mfa' | '/enrol', code: string): Promise<Step> {
  return b.post(formAction(p.html, suffix), { csrf: csrfOf(p.html), code });
}

export async function submitContinue(b: Browser, p: Page): Promise<Step> {
  return b.post(formAction(p.html, '/continue'), { csrf: csrfOf(p.html) });
}

export interface Started {
  step: Step;
  verifier: string;
}

export async function start(b: Browser, client: TestClient, extra: Partial<AuthParams> = {}): Promise<Started> {
  const { verifier, challenge } = pkce();
  const step = await authorize(b, { client_id: client.id, code_challenge: challenge, code_challenge_method: 'S256', ...extra });
  return { step, verifier };
}

/** Starts a sign-in and submits the password: the page that follows it (second factor), or the redirect. */
export async function passwordStep(b: Browser, client: TestClient, email: string, extra: Partial<AuthParams> = {}): Promise<Started> {
  const s = await start(b, client, extra);
  const login = page(s.step);
  expect(isLoginPage(login)).toBe(true);
  return { step: await submitLogin(b, login, email, PASSWORD), verifier: s.verifier };
}

/** Exchanges the code of a redirect back to the client; the ID token's claims. */
export async function idTokenOf(t: TestApp, client: TestClient, callback: URL, verifier: string): Promise<JWTPayload> {
  const code = callback.searchParams.get('code');
  expect(code, `no code in ${callback.href}`).toBeTruthy();
  const res = await exchangeCode(t, client, code!, verifier);
  expect(res.status, JSON.stringify(res.body)).toBe(200);
  return decodeJwt(res.body.id_token as string);
}

export interface Enrolled {
  id: string;
  email: string;
  secret: string;
  recoveryCodes: string[];
}

/** Creates a person and enrols them through the pages of a client that requires MFA. */
export async function enrolledUser(t: TestApp, strict: TestClient, email: string): Promise<Enrolled> {
  const { id } = await createUser(t, email);
  const b = new Browser(t);
  const { step, verifier } = await passwordStep(b, strict, email);
  const enrol = page(step);
  expect(isEnrolPage(enrol)).toBe(true);
  const secret = secretOf(enrol);
  const codes = page(await submitCode(b, enrol, '/enrol', await totp(secret)));
  expect(isCodesPage(codes)).toBe(true);
  const recoveryCodes = recoveryCodesOf(codes);
  expect(recoveryCodes).toHaveLength(10);
  const claims = await idTokenOf(t, strict, redirect(await submitContinue(b, codes)), verifier);
  expect(claims.acr).toBe(ACR_MFA);
  return { id, email, secret, recoveryCodes };
}
