// The mails Gatehouse sends, each as plain text plus HTML. They name the
// application the person came from where there is one, say how long a link
// lasts and what to do if the mail was unexpected, and never contain a
// password (nor anything but the one link).
import type { Mail } from './mailer.ts';

const ESCAPES: Record<string, string> = { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' };
const esc = (s: string) => s.replace(/[&<>"']/g, (c) => ESCAPES[c]!);

/** One line of plain text: no control characters (a name from input never breaks the layout). */
// eslint-disable-next-line no-control-regex
const line = (s: string) => s.replace(/[\u0000-\u001f\u007f]+/g, ' ').trim();

interface Parts {
  to: string;
  kind: string;
  subject: string;
  /** paragraphs before the button */
  intro: string[];
  /** the link and its button label */
  action?: { link: string; label: string };
  /** paragraphs after it */
  outro: string[];
}

function compose(p: Parts): Mail {
  const text = [
    ...p.intro,
    ...(p.action ? [`${p.action.label}:\n${p.action.link}`] : []),
    ...p.outro,
    '-- \nGatehouse single sign-on',
  ].join('\n\n');
  const para = (s: string) => `<p style="margin:0 0 16px">${esc(s)}</p>`;
  const html = `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="color-scheme" content="light dark"><title>${esc(p.subject)}</title></head>
<body style="font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;font-size:16px;line-height:1.5;max-width:560px;margin:0 auto;padding:24px">
${p.intro.map(para).join('\n')}
${
  p.action
    ? `<p style="margin:24px 0"><a href="${esc(p.action.link)}" style="display:inline-block;background:#1d4ed8;color:#ffffff;padding:12px 20px;border-radius:6px;text-decoration:none;font-weight:600">${esc(p.action.label)}</a></p>
<p style="margin:0 0 16px;font-size:14px">If the button does not work, copy this address into your browser:<br><span style="word-break:break-all">${esc(p.action.link)}</span></p>`
    : ''
}
${p.outro.map(para).join('\n')}
<p style="margin:32px 0 0;font-size:13px;color:#555">Gatehouse single sign-on</p>
</body></html>
`;
  return { to: p.to, kind: p.kind, subject: p.subject, text, html, ...(p.action ? { link: p.action.link } : {}) };
}

const forApp = (clientName: string | undefined) => (clientName ? ` for ${line(clientName)}` : '');

export function invitationMail(v: { to: string; name?: string | null; link: string; days: number; clientName?: string }): Mail {
  const hello = v.name ? `Hello ${line(v.name)},` : 'Hello,';
  return compose({
    to: v.to,
    kind: 'invitation',
    subject: `You are invited to sign in with Gatehouse${forApp(v.clientName)}`,
    intro: [hello, `You have been invited to an account${forApp(v.clientName)}. Choose a password to start; you may be asked to set up two-step verification right after.`],
    action: { link: v.link, label: 'Accept the invitation' },
    outro: [`The link works once and expires in ${v.days} days.`, 'If you did not expect this invitation, you can ignore this mail.'],
  });
}

export function resetMail(v: { to: string; link: string; minutes: number; clientName?: string }): Mail {
  return compose({
    to: v.to,
    kind: 'password-reset',
    subject: 'Reset your Gatehouse password',
    intro: [`Someone (hopefully you) asked to reset the password of this account${forApp(v.clientName)}.`],
    action: { link: v.link, label: 'Choose a new password' },
    outro: [
      `The link works once and expires in ${v.minutes} minutes. Resetting signs you out everywhere; your two-step verification stays as it is.`,
      'If you did not ask for this, ignore this mail: your password stays unchanged.',
    ],
  });
}

export function passwordChangedMail(v: { to: string; at: Date }): Mail {
  return compose({
    to: v.to,
    kind: 'password-changed',
    subject: 'Your Gatehouse password was changed',
    intro: [
      `The password of this account was reset on ${v.at.toUTCString()}. You have been signed out everywhere.`,
      'If this was not you, contact your administrator right away.',
    ],
    outro: [],
  });
}

export function verifySignupMail(v: { to: string; link: string; hours: number; clientName?: string }): Mail {
  return compose({
    to: v.to,
    kind: 'signup-verification',
    subject: 'Confirm your email address for Gatehouse',
    intro: [`Thanks for signing up${forApp(v.clientName)}. Confirm that this address is yours to finish creating the account.`],
    action: { link: v.link, label: 'Confirm my email address' },
    outro: [`The link works once and expires in ${v.hours} hours.`, 'If you did not sign up, ignore this mail: no account is created.'],
  });
}

export function alreadyRegisteredMail(v: { to: string; resetLink: string }): Mail {
  return compose({
    to: v.to,
    kind: 'signup-existing',
    subject: 'Someone tried to sign up with your email address',
    intro: ['Someone tried to create a Gatehouse account with this address, but you already have one. Nothing was changed.'],
    action: { link: v.resetLink, label: 'Forgot your password? Reset it' },
    outro: ['If this was not you, you can ignore this mail.'],
  });
}

export function verifyEmailChangeMail(v: { to: string; link: string; hours: number }): Mail {
  return compose({
    to: v.to,
    kind: 'email-change-verification',
    subject: 'Confirm your new email address for Gatehouse',
    intro: ['Someone (hopefully you) asked to use this address for a Gatehouse account. Confirm it to make the change.'],
    action: { link: v.link, label: 'Confirm this address' },
    outro: [`The link works once and expires in ${v.hours} hours.`, 'If you did not ask for this, ignore this mail: nothing changes.'],
  });
}

export function emailChangeNoticeMail(v: { to: string; newEmail: string }): Mail {
  return compose({
    to: v.to,
    kind: 'email-change-notice',
    subject: 'Your Gatehouse email address is being changed',
    intro: [
      `Someone asked to change the email address of your Gatehouse account to ${line(v.newEmail)}. The change happens once that address is confirmed.`,
      'If this was not you, change your password and contact your administrator right away.',
    ],
    outro: [],
  });
}
