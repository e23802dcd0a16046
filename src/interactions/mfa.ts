// Two-step verification in the sign-in interaction: when it is needed, what
// a login records (acr / amr), and the state between the password and the
// second factor.
//
// When: after a right password, the login goes on to a second factor if the
// person has MFA (always), or if MFA is required for this request: the client
// has `requireMfa`, or the request asks for the MFA level (acr_values, or the
// claims parameter's id_token.acr, naming urn:gatehouse:acr:mfa and not
// urn:gatehouse:acr:pwd). A person without MFA then enrols on the spot.
//
// What a login records (RFC 8176 amr values):
//   password only        acr urn:gatehouse:acr:pwd   amr ["pwd"]
//   password + TOTP      acr urn:gatehouse:acr:mfa   amr ["pwd", "otp", "mfa"]
//   password + recovery  acr urn:gatehouse:acr:mfa   amr ["pwd", "mfa"]
//   password + passkey   acr urn:gatehouse:acr:mfa   amr ["pwd", "hwk" | "swk", "mfa"]
//   passkey alone        acr urn:gatehouse:acr:mfa   amr ["hwk" | "swk", "user", "mfa"]
// (a recovery code is not an RFC 4226/6238 one-time password, so no "otp";
// "mfa" says a second factor was used either way). A passkey is proof of
// possession of a key: "hwk" when the authenticator says it is bound to one
// device, "swk" when it is synced (backed up, so held in software somewhere).
// Alone it signs in only with user verification (the PIN or biometric that
// unlocks it: "user"), so it counts as two factors and satisfies
// acr_values=urn:gatehouse:acr:mfa.
//
// Between the steps: the password step stores a PendingLogin in the
// interaction's `result` (oidc-provider keeps it server-side in the
// interaction record, bound to the browser by the interaction cookie). It
// has no `login` member, so oidc-provider never treats it as a login: the
// login happens only when the second factor finishes the interaction. It
// expires PENDING_TTL_SECONDS after the password was checked.
import type { Interaction } from 'oidc-provider';
import QRCode from 'qrcode';
import { openString, sealString } from '../accounts/mfa.ts';
import { epochNow } from './lifetimes.ts';

export const ACR_PWD = 'urn:gatehouse:acr:pwd';
export const ACR_MFA = 'urn:gatehouse:acr:mfa';
export const ACR_VALUES: readonly string[] = [ACR_PWD, ACR_MFA];

export const AMR_PASSWORD: readonly string[] = ['pwd'];
export const AMR_TOTP: readonly string[] = ['pwd', 'otp', 'mfa'];
export const AMR_RECOVERY: readonly string[] = ['pwd', 'mfa'];

/** RFC 8176 key value of a passkey: hardware-bound (single device) or synced. */
export const passkeyKeyAmr = (deviceType: string): 'hwk' | 'swk' => (deviceType === 'singleDevice' ? 'hwk' : 'swk');

/** How long the second step may take after the password was accepted. */
export const PENDING_TTL_SECONDS = 600;

/** The authorization parameters that matter here. */
export interface AcrParams {
  acr_values?: unknown;
  claims?: unknown;
}

/** The acr values a request names (acr_values, and claims.id_token.acr value/values). */
export function requestedAcrValues(params: AcrParams): Set<string> {
  const wanted = new Set<string>();
  if (typeof params.acr_values === 'string') for (const v of params.acr_values.split(' ')) if (v) wanted.add(v);
  if (typeof params.claims === 'string' && params.claims.length <= 64 * 1024) {
    try {
      const parsed = JSON.parse(params.claims) as { id_token?: { acr?: { value?: unknown; values?: unknown } | null } } | null;
      const acr = parsed?.id_token?.acr;
      if (acr && typeof acr === 'object') {
        if (typeof acr.value === 'string') wanted.add(acr.value);
        if (Array.isArray(acr.values)) for (const v of acr.values as unknown[]) if (typeof v === 'string') wanted.add(v);
      }
    } catch {
      // oidc-provider refuses a malformed claims parameter itself
    }
  }
  return wanted;
}

/** Does the request ask for the MFA level only (not "password or MFA")? */
export function mfaRequested(params: AcrParams): boolean {
  const wanted = requestedAcrValues(params);
  return wanted.has(ACR_MFA) && !wanted.has(ACR_PWD);
}

// -------------------------------------------------------------- pending

export type PendingStage = 'verify' | 'enrol' | 'enrolled';

export interface PendingLogin {
  accountId: string;
  remember: boolean;
  /** when the password was accepted (epoch seconds) */
  at: number;
  stage: PendingStage;
  /** enrol: the secret being set up, sealed with the KEK (bound to interaction and account) */
  secret?: string;
  /** enrolled: the factor that was used */
  method?: 'otp';
  /** a step-up: the session's person, asked only for the second factor */
  stepUp?: boolean;
}

const RESULT_KEY = 'gatehouse_pending_login';

const pendingAad = (uid: string, accountId: string) => `gatehouse/totp-enrolment/v1:${uid}:${accountId}`;

function isPending(v: unknown): v is PendingLogin {
  if (!v || typeof v !== 'object') return false;
  const p = v as Partial<PendingLogin>;
  return (
    typeof p.accountId === 'string' &&
    typeof p.remember === 'boolean' &&
    typeof p.at === 'number' &&
    (p.stage === 'verify' || p.stage === 'enrol' || p.stage === 'enrolled')
  );
}

/** The interaction's pending login, unless there is none or it expired. */
export function pendingLogin(i: Interaction, now = epochNow()): PendingLogin | undefined {
  const p = i.result?.[RESULT_KEY];
  if (!isPending(p)) return undefined;
  if (now - p.at > PENDING_TTL_SECONDS || now < p.at - 60) return undefined;
  return p;
}

/** Stores (or, with undefined, clears) the pending login in the interaction. */
export async function savePendingLogin(i: Interaction, p: PendingLogin | undefined): Promise<void> {
  i.result = p ? { [RESULT_KEY]: p } : {};
  await i.save(Math.max(1, i.exp - epochNow()));
}

const SWITCH_KEY = 'gatehouse_switch_account';

/** "Not you?" at a step-up: the login form is shown even though the browser has a session. */
export async function markSwitchAccount(i: Interaction): Promise<void> {
  i.result = { [SWITCH_KEY]: true };
  await i.save(Math.max(1, i.exp - epochNow()));
}

export function switchingAccount(i: Interaction): boolean {
  return i.result?.[SWITCH_KEY] === true;
}

export function sealEnrolmentSecret(kek: Buffer, uid: string, accountId: string, secret: string): string {
  return sealString(secret, kek, pendingAad(uid, accountId));
}

export function openEnrolmentSecret(kek: Buffer, uid: string, p: PendingLogin): string | undefined {
  return p.secret ? openString(p.secret, kek, pendingAad(uid, p.accountId)) : undefined;
}

// ------------------------------------------------------------------ QR

/** The otpauth URI as an SVG QR code in a data: URI (the CSP allows data: images, not inline markup). */
export async function qrDataUri(uri: string): Promise<string> {
  const svg = await QRCode.toString(uri, { type: 'svg', errorCorrectionLevel: 'M', margin: 4, color: { dark: '#000000', light: '#ffffff' } });
  return `data:image/svg+xml;base64,${Buffer.from(svg, 'utf8').toString('base64')}`;
}

/** "JBSWY3DPEHPK3PXP" → "JBSW Y3DP EHPK 3PXP" (easier to type). */
export function groupSecret(secret: string): string {
  return secret.replace(/(.{4})(?=.)/g, '$1 ');
}
