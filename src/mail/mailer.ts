// Outgoing mail: invitations, password reset, email verification and the
// notices that go with them.
//
// With SMTP_URL, mail goes through SMTP with nodemailer (STARTTLS when the
// server offers it; smtps:// for implicit TLS; credentials in the URL).
// Without it, outside production, each mail is written to DATA_DIR/mail/ as
// `<time>-<id>.eml` (mode 0600) and its link is logged at info level, so
// `npm start` alone can complete every flow. In production without SMTP_URL
// the mailer is disabled (config.mail.enabled): the features that need mail
// are off, and sending refuses with MailUnavailableError.
//
// Requests never wait for SMTP: pages enqueue() their mail and answer; the
// queue sends in the background and logs a failure (never the link or the
// body). The CLI awaits send() so that it can report the outcome. idle()
// waits for the queue (tests, graceful shutdown).
import { randomBytes } from 'node:crypto';
import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import nodemailer from 'nodemailer';
import type { Config } from '../config/config.ts';
import type { Logger } from '../logging/logger.ts';

export interface Mail {
  to: string;
  subject: string;
  text: string;
  html: string;
  /** what the mail is (invitation, reset, …): logged, never the body */
  kind: string;
  /** the link in the mail, logged when the mail is written to a file (outside production) */
  link?: string;
}

export class MailUnavailableError extends Error {
  constructor() {
    super('mail is not set up: set SMTP_URL (and MAIL_FROM) to send invitations, password resets and verification links');
  }
}

export interface Mailer {
  /** whether mail can be sent (SMTP_URL set, or a development file drop) */
  readonly enabled: boolean;
  /** where mail goes: 'smtp', 'file' (DATA_DIR/mail) or 'off' */
  readonly mode: 'smtp' | 'file' | 'off';
  /** sends now; rejects when the mail could not be handed over */
  send(mail: Mail): Promise<void>;
  /** sends in the background (out of the request path); a failure is logged */
  enqueue(mail: Mail): void;
  /** resolves once every enqueued mail has been handled */
  idle(): Promise<void>;
  close(): Promise<void>;
}

export function createMailer(config: Pick<Config, 'mail' | 'dataDir' | 'production'>, logger: Logger): Mailer {
  const { smtpUrl, from } = config.mail;
  const mode = smtpUrl ? 'smtp' : config.mail.enabled ? 'file' : 'off';
  const transport =
    mode === 'smtp'
      ? nodemailer.createTransport(smtpUrl, { from })
      : nodemailer.createTransport({ streamTransport: true, buffer: true, newline: 'unix' }, { from });
  const dir = path.join(config.dataDir, 'mail');
  const pending = new Set<Promise<void>>();

  async function send(mail: Mail): Promise<void> {
    if (mode === 'off') throw new MailUnavailableError();
    const message = { to: mail.to, subject: mail.subject, text: mail.text, html: mail.html };
    if (mode === 'smtp') {
      await transport.sendMail(message);
      logger.info({ mail: mail.kind }, 'mail sent');
      return;
    }
    const info = (await transport.sendMail(message)) as { message: Buffer };
    await mkdir(dir, { recursive: true, mode: 0o700 });
    const file = path.join(dir, `${new Date().toISOString().replace(/[:.]/g, '-')}-${randomBytes(4).toString('hex')}.eml`);
    await writeFile(file, info.message, { mode: 0o600 });
    // Development only (no SMTP_URL, not production): the link is what a developer needs to go on.
    logger.info({ mail: mail.kind, file, ...(mail.link ? { link: mail.link } : {}) }, 'mail written to a file (SMTP_URL is not set)');
  }

  return {
    enabled: mode !== 'off',
    mode,
    send,
    enqueue(mail) {
      // not even the message building runs in the caller's turn
      const p = new Promise<void>((resolve) => setImmediate(resolve))
        .then(() => send(mail))
        .catch((err: unknown) => logger.warn({ mail: mail.kind, err: { message: (err as Error).message } }, 'mail could not be sent'))
        .finally(() => pending.delete(p));
      pending.add(p);
    },
    async idle() {
      while (pending.size > 0) await Promise.all([...pending]);
    },
    async close() {
      await this.idle();
      transport.close();
    },
  };
}
