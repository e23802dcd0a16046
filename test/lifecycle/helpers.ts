// Helpers for the account lifecycle pages (src/lifecycle/routes.ts): the
// app with a real SMTP server, and forms submitted the way a browser would
// (cookies kept, the CSRF token read from the page).
import { expect } from 'vitest';
import { createTestApp, type TestApp } from '../helpers/app.ts';
import type { Env } from '../../src/config/config.ts';
import { startSmtpServer, type TestSmtp } from '../helpers/smtp.ts';
import { Browser, page, type Page } from '../sso/flow.ts';

export interface MailApp {
  t: TestApp;
  smtp: TestSmtp;
  close(): Promise<void>;
}

export async function mailApp(env: Env = {}): Promise<MailApp> {
  const smtp = await startSmtpServer();
  const t = await createTestApp({ env: { SMTP_URL: smtp.url, ...env } });
  return {
    t,
    smtp,
    async close() {
      await t.close();
      await smtp.close();
    },
  };
}

export function csrfOf(html: string): string {
  const m = /name="csrf" value="([^"]+)"/.exec(html);
  if (!m) throw new Error(`no CSRF token on the page:\n${html}`);
  return m[1]!;
}

/** The value of a hidden input. */
export function hiddenOf(html: string, name: string): string {
  const m = new RegExp(`name="${name}" value="([^"]*)"`).exec(html);
  if (!m) throw new Error(`no ${name} on the page`);
  return m[1]!;
}

/** GETs a page (no redirect expected). */
export async function open(b: Browser, url: string): Promise<Page> {
  return page(await b.get(url));
}

/** Submits the page's first form (its CSRF token added) to `action`, or to the page's own URL. */
export async function submit(b: Browser, from: Page, fields: Record<string, string>, action?: string): Promise<Page> {
  const m = /<form method="post" action="([^"]+)"/.exec(from.html);
  const to = action ?? (m ? m[1]!.replace(/&amp;/g, '&') : from.url);
  return page(await b.post(to, { csrf: csrfOf(from.html), ...fields }));
}

/** The visible text of a page's main content (tags stripped, whitespace folded). */
export function textOf(html: string): string {
  const main = /<main[^>]*>([\s\S]*)<\/main>/.exec(html)?.[1] ?? html;
  return main
    .replace(/<[^>]+>/g, ' ')
    .replace(/&amp;/g, '&')
    .replace(/&#39;/g, "'")
    .replace(/&quot;/g, '"')
    .replace(/\s+/g, ' ')
    .trim();
}

export function expectNoServerError(p: Page): void {
  expect(p.status, textOf(p.html)).toBeLessThan(500);
}

export { Browser };
