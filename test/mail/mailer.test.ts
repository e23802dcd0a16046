// The mail component: real SMTP (smtp-server in this process), the
// development file drop, production without SMTP_URL, and the configuration.
import { mkdtempSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Writable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ConfigError, loadConfig } from '../../src/config/config.ts';
import { createLogger } from '../../src/logging/logger.ts';
import { createMailer, MailUnavailableError } from '../../src/mail/mailer.ts';
import { invitationMail, passwordChangedMail, resetMail } from '../../src/mail/templates.ts';
import { linkIn, startSmtpServer, type TestSmtp } from '../helpers/smtp.ts';

const tmp = () => mkdtempSync(path.join(tmpdir(), 'gh-mail-'));

function captureLogger() {
  const lines: Record<string, unknown>[] = [];
  const stream = new Writable({
    write(chunk: Buffer, _enc, cb) {
      for (const l of chunk.toString().split('\n').filter(Boolean)) lines.push(JSON.parse(l) as Record<string, unknown>);
      cb();
    },
  });
  return { logger: createLogger('info', stream), lines };
}

describe('mail through SMTP', () => {
  let smtp: TestSmtp;
  beforeAll(async () => {
    smtp = await startSmtpServer();
  });
  afterAll(() => smtp.close());

  it('delivers plain text and HTML from MAIL_FROM, with the link in both', async () => {
    const config = loadConfig({ DATA_DIR: tmp(), SMTP_URL: smtp.url, MAIL_FROM: 'Acme Sign-in <login@acme.example>' });
    const mailer = createMailer(config, createLogger('silent'));
    expect(mailer.mode).toBe('smtp');
    await mailer.send(invitationMail({ to: 'Ann@Example.com', name: 'Ann <b>', link: 'https://id.example/invite/abc', days: 7, clientName: 'Payroll' }));
    const mail = await smtp.waitForMail('ann@example.com');
    expect(mail.fromHeader).toBe('"Acme Sign-in" <login@acme.example>');
    expect(mail.subject).toBe('You are invited to sign in with Gatehouse for Payroll');
    expect(mail.text).toContain('Hello Ann <b>,');
    expect(mail.html).toContain('Hello Ann &lt;b&gt;,');
    expect(linkIn(mail, '/invite/')).toBe('https://id.example/invite/abc');
    expect(mail.html).toContain('href="https://id.example/invite/abc"');
    await mailer.close();
  });

  it('enqueue() sends out of the caller\'s path; idle() waits for it', async () => {
    const mailer = createMailer(loadConfig({ DATA_DIR: tmp(), SMTP_URL: smtp.url }), createLogger('silent'));
    mailer.enqueue(resetMail({ to: 'bob@example.com', link: 'https://id.example/reset/x', minutes: 30 }));
    await mailer.idle();
    const mail = await smtp.waitForMail('bob@example.com', { timeoutMs: 1000 });
    expect(mail.subject).toBe('Reset your Gatehouse password');
    expect(mail.fromHeader).toBe('"Gatehouse" <no-reply@localhost>');
    await mailer.close();
  });

  it('a failed delivery of an enqueued mail is logged without its link, never thrown', async () => {
    const { logger, lines } = captureLogger();
    // a port nothing listens on
    const mailer = createMailer(loadConfig({ DATA_DIR: tmp(), SMTP_URL: 'smtp://127.0.0.1:1' }), logger);
    mailer.enqueue(resetMail({ to: 'x@example.com', link: 'https://id.example/reset/SECRET-LINK', minutes: 30 }));
    await mailer.idle();
    const failure = lines.find((l) => l.msg === 'mail could not be sent');
    expect(failure).toMatchObject({ mail: 'password-reset' });
    expect(JSON.stringify(lines)).not.toContain('SECRET-LINK');
    await mailer.close();
  });
});

describe('mail without SMTP_URL', () => {
  it('outside production: written to DATA_DIR/mail/<time>-<id>.eml (0600), its link logged', async () => {
    const dataDir = tmp();
    const { logger, lines } = captureLogger();
    const mailer = createMailer(loadConfig({ DATA_DIR: dataDir }), logger);
    expect(mailer.mode).toBe('file');
    await mailer.send(resetMail({ to: 'cy@example.com', link: 'https://id.example/reset/tok', minutes: 30 }));
    const files = readdirSync(path.join(dataDir, 'mail'));
    expect(files).toHaveLength(1);
    expect(files[0]).toMatch(/^\d{4}-\d\d-\d\dT[\d-]+Z-[0-9a-f]{8}\.eml$/);
    const file = path.join(dataDir, 'mail', files[0]!);
    expect(statSync(file).mode & 0o777).toBe(0o600);
    const eml = readFileSync(file, 'utf8');
    expect(eml).toContain('Subject: Reset your Gatehouse password');
    expect(eml).toContain('To: cy@example.com');
    expect(eml).toContain('multipart/alternative');
    expect(lines.find((l) => l.msg === 'mail written to a file (SMTP_URL is not set)')).toMatchObject({ link: 'https://id.example/reset/tok', file });
  });

  it('in production: mail is off and sending refuses with a clear error', async () => {
    const config = loadConfig({
      NODE_ENV: 'production',
      DATABASE_URL: 'postgresql://db.internal/gatehouse',
      COOKIE_SECRETS: 'Zx9kQ2mPq7Lr4Tw8Yb3Nc6Vd1Hf5Jg0Ks2Ae7Ui9Oy4',
      KEY_ENCRYPTION_KEY: Buffer.from('q7Lr4Tw8Yb3Nc6Vd1Hf5Jg0Ks2Ae7Ui9').toString('base64'),
      ISSUER: 'https://id.example.com',
      METRICS_TOKEN: 'off',
    });
    expect(config.mail.enabled).toBe(false);
    const mailer = createMailer(config, createLogger('silent'));
    expect(mailer.enabled).toBe(false);
    await expect(mailer.send(passwordChangedMail({ to: 'a@example.com', at: new Date() }))).rejects.toThrow(MailUnavailableError);
  });
});

describe('mail configuration', () => {
  const error = (env: Record<string, string>) => {
    try {
      loadConfig({ DATA_DIR: tmp(), ...env });
    } catch (err) {
      expect(err).toBeInstanceOf(ConfigError);
      return (err as Error).message;
    }
    return undefined;
  };
  it('refuses a SMTP_URL that is not smtp(s)://, in one line', () => {
    expect(error({ SMTP_URL: 'http://mail.example.com' })).toBe(
      'invalid SMTP_URL: must be an smtp:// or smtps:// URL (e.g. smtps://user:pass@mail.example.com:465)',
    );
  });
  it('refuses a MAIL_FROM without an address or over several lines', () => {
    expect(error({ MAIL_FROM: 'Gatehouse' })).toMatch(/^invalid MAIL_FROM: /);
    expect(error({ MAIL_FROM: 'a@b.example\r\nBcc: x@evil.example' })).toMatch(/^invalid MAIL_FROM: /);
  });
  it('refuses an unknown SIGNUP', () => {
    expect(error({ SIGNUP: 'yes' })).toBe('invalid SIGNUP: must be off, invite or open');
  });
  it('SIGNUP defaults to off; MAIL_FROM to no-reply at the issuer host', () => {
    const c = loadConfig({ DATA_DIR: tmp(), ISSUER: 'https://id.example.org/sso' });
    expect(c.signup).toBe('off');
    expect(c.mail).toEqual({ enabled: true, smtpUrl: undefined, from: 'Gatehouse <no-reply@id.example.org>' });
  });
  it('production with sign-up on refuses to start without SMTP_URL', () => {
    const prod = {
      NODE_ENV: 'production',
      DATABASE_URL: 'postgresql://db.internal/gatehouse',
      COOKIE_SECRETS: 'Zx9kQ2mPq7Lr4Tw8Yb3Nc6Vd1Hf5Jg0Ks2Ae7Ui9Oy4',
      KEY_ENCRYPTION_KEY: Buffer.from('q7Lr4Tw8Yb3Nc6Vd1Hf5Jg0Ks2Ae7Ui9').toString('base64'),
      ISSUER: 'https://id.example.com',
      METRICS_TOKEN: 'off',
    };
    expect(error({ ...prod, SIGNUP: 'open' })).toBe('SIGNUP=open requires SMTP_URL when NODE_ENV=production (sign-up and invitations mail a link)');
    expect(error({ ...prod, SIGNUP: 'invite' })).toBe('SIGNUP=invite requires SMTP_URL when NODE_ENV=production (sign-up and invitations mail a link)');
    expect(loadConfig({ ...prod, SIGNUP: 'open', SMTP_URL: 'smtps://u:p@mail.example.com' }).mail.enabled).toBe(true);
  });
});
