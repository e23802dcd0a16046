// A complete, valid environment for tests: no generated secrets on disk.
import { randomBytes } from 'node:crypto';
import type { Env } from '../../src/config/config.ts';

export const TEST_KEK = randomBytes(32).toString('base64');
export const TEST_COOKIE_SECRET = randomBytes(32).toString('base64url');

export function testEnv(databaseUrl: string, extra: Env = {}): Env {
  return {
    DATABASE_URL: databaseUrl,
    COOKIE_SECRETS: TEST_COOKIE_SECRET,
    KEY_ENCRYPTION_KEY: TEST_KEK,
    LOG_LEVEL: 'silent',
    DATA_DIR: '/nonexistent-gatehouse-test-data',
    // tests run their back-channel receivers on loopback; test/security/edge-outbound.test.ts overrides this
    OUTBOUND_ALLOWLIST: '127.0.0.0/8,::1/128',
    ...extra,
  };
}
