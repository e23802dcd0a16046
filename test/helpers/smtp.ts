// A real SMTP server (the `smtp-server` package) inside the test process,
// and the mails it received, parsed with `mailparser`.
//
//   const smtp = await startSmtpServer();             // listens on 127.0.0.1, a free port
//   const t = await createTestApp({ env: { SMTP_URL: smtp.url } });
//   …                                                 // something that sends mail
//   const mail = await smtp.waitForMail('ann@example.com');   // the next mail to her
//   const link = linkIn(mail, '/reset/');             // the first link whose path starts so
//   …
//   await smtp.close();
//
// waitForMail(to) hands out each received mail once, oldest first, so two
// calls for the same address return two different mails; it rejects after
// `timeoutMs` (default 10 s) naming what did arrive. `smtp.mails` is every
// mail received so far (handed out or not). The server takes any sender and
// recipient, offers no STARTTLS and no AUTH (plain loopback SMTP).
import type { AddressInfo } from 'node:net';
import { simpleParser } from 'mailparser';
import { SMTPServer } from 'smtp-server';

export interface ReceivedMail {
  /** envelope sender */
  from: string;
  /** envelope recipients, lower-cased */
  to: string[];
  /** the From header as written */
  fromHeader: string;
  subject: string;
  text: string;
  html: string;
  /** the message as received (headers and body) */
  raw: string;
}

export interface TestSmtp {
  /** SMTP_URL for Gatehouse */
  url: string;
  port: number;
  /** every mail received so far */
  mails: ReceivedMail[];
  /** the next mail to `to` not handed out yet (waits for it) */
  waitForMail(to: string, opts?: { timeoutMs?: number }): Promise<ReceivedMail>;
  /** mails to `to` received so far that were not handed out (does not wait, hands nothing out) */
  unread(to: string): ReceivedMail[];
  close(): Promise<void>;
}

export async function startSmtpServer(): Promise<TestSmtp> {
  const mails: ReceivedMail[] = [];
  const handedOut = new Set<ReceivedMail>();
  const waiters = new Set<() => void>();
  const server = new SMTPServer({
    disabledCommands: ['STARTTLS', 'AUTH'],
    logger: false,
    size: 1024 * 1024,
    onData(stream, session, done) {
      const chunks: Buffer[] = [];
      stream.on('data', (c: Buffer) => chunks.push(c));
      stream.on('end', () => {
        const raw = Buffer.concat(chunks);
        simpleParser(raw)
          .then((parsed) => {
            const envelope = session.envelope;
            mails.push({
              from: envelope.mailFrom ? envelope.mailFrom.address : '',
              to: envelope.rcptTo.map((r) => r.address.toLowerCase()),
              fromHeader: parsed.from?.text ?? '',
              subject: parsed.subject ?? '',
              text: parsed.text ?? '',
              html: typeof parsed.html === 'string' ? parsed.html : '',
              raw: raw.toString('utf8'),
            });
            for (const w of waiters) w();
            done();
          })
          .catch((err: Error) => done(err));
      });
    },
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.server.address() as AddressInfo).port;

  const unread = (to: string) => mails.filter((m) => !handedOut.has(m) && m.to.includes(to.toLowerCase()));

  return {
    url: `smtp://127.0.0.1:${port}`,
    port,
    mails,
    unread,
    waitForMail(to, opts = {}) {
      return new Promise<ReceivedMail>((resolve, reject) => {
        const take = (): boolean => {
          const m = unread(to)[0];
          if (!m) return false;
          handedOut.add(m);
          resolve(m);
          return true;
        };
        if (take()) return;
        const timer = setTimeout(() => {
          waiters.delete(check);
          const seen = mails.map((m) => `${m.to.join(',')}: ${m.subject}`).join('; ') || 'none';
          reject(new Error(`no mail to ${to} within ${opts.timeoutMs ?? 10_000} ms (received: ${seen})`));
        }, opts.timeoutMs ?? 10_000);
        const check = () => {
          if (take()) {
            clearTimeout(timer);
            waiters.delete(check);
          }
        };
        waiters.add(check);
      });
    },
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}

/** The first http(s) link in the mail's plain text whose path contains `pathPart` (any link when omitted). */
export function linkIn(mail: ReceivedMail, pathPart = ''): string {
  for (const m of mail.text.matchAll(/https?:\/\/[^\s<>"]+/g)) {
    if (new URL(m[0]).pathname.includes(pathPart)) return m[0];
  }
  throw new Error(`no link containing ${pathPart || '(any)'} in the mail "${mail.subject}":\n${mail.text}`);
}
