import { hash as argon2Hash, type Algorithm } from '@node-rs/argon2';
import { describe, expect, it } from 'vitest';
import { ValidationError } from '../../src/kernel/errors.ts';
import {
  ARGON2_PARAMS,
  hashPassword,
  validatePassword,
  verifyAgainstDummy,
  verifyPassword,
} from '../../src/accounts/passwords.ts';

describe('passwords', () => {
  it('exports the OWASP argon2id parameters', () => {
    expect(ARGON2_PARAMS).toEqual({ algorithm: 2 /* Algorithm.Argon2id */, memoryCost: 19456, timeCost: 2, parallelism: 1 });
  });

  it('hashes with argon2id at those parameters, salted', async () => {
    const a = await hashPassword('correct horse battery');
    const b = await hashPassword('correct horse battery');
    expect(a).toMatch(/^\$argon2id\$v=19\$m=19456,t=2,p=1\$/);
    expect(a).not.toBe(b);
  });

  it('verifies the right password and refuses a wrong one', async () => {
    const h = await hashPassword('correct horse battery');
    expect(await verifyPassword(h, 'correct horse battery')).toEqual({ ok: true, needsRehash: false });
    expect(await verifyPassword(h, 'correct horse battery ')).toEqual({ ok: false, needsRehash: false });
    expect(await verifyPassword(h, '')).toEqual({ ok: false, needsRehash: false });
  });

  it('verifies hashes written by the reference implementation (node-argon2 0.44, used before)', async () => {
    // made with argon2@0.44.0: argon2.hash('correct horse battery', { type: argon2id, m=19456, t=2, p=1 })
    const stored = '$argon2id$v=19$m=19456,t=2,p=1$RzmfgSyGmNCywKI+b3PaKQ$uwSuqVokkANbQIbd/Gzdl5aSfX731buHMfUoGgzeeXc';
    expect(await verifyPassword(stored, 'correct horse battery')).toEqual({ ok: true, needsRehash: false });
    expect(await verifyPassword(stored, 'correct horse batterY')).toEqual({ ok: false, needsRehash: false });
  });

  it('asks for a rehash when the stored hash uses other parameters or another variant', async () => {
    const weak = await argon2Hash('correct horse battery', { algorithm: 2 as Algorithm /* Argon2id */, memoryCost: 4096, timeCost: 1, parallelism: 1 });
    expect(await verifyPassword(weak, 'correct horse battery')).toEqual({ ok: true, needsRehash: true });
    expect(await verifyPassword(weak, 'wrong password!')).toEqual({ ok: false, needsRehash: false });
    const argon2i = await argon2Hash('correct horse battery', { ...ARGON2_PARAMS, algorithm: 1 as Algorithm /* Argon2i */ });
    expect(await verifyPassword(argon2i, 'correct horse battery')).toEqual({ ok: true, needsRehash: true });
  });

  it('treats a malformed stored hash as a mismatch instead of throwing', async () => {
    expect(await verifyPassword('not-a-hash', 'whatever-password')).toEqual({ ok: false, needsRehash: false });
    expect(await verifyPassword('$argon2id$v=19$m=1,t=1,p=1$$', 'whatever-password')).toEqual({ ok: false, needsRehash: false });
  });

  it('verifyAgainstDummy always fails', async () => {
    expect(await verifyAgainstDummy('anything at all')).toBe(false);
    expect(await verifyAgainstDummy('')).toBe(false);
  });

  it('enforces 8 characters to 1024 bytes, with one-line errors', async () => {
    expect(() => validatePassword('1234567')).toThrow(ValidationError);
    expect(() => validatePassword('1234567')).toThrow('invalid password: must be at least 8 characters');
    expect(() => validatePassword('12345678')).not.toThrow();
    expect(() => validatePassword('x'.repeat(1024))).not.toThrow();
    expect(() => validatePassword('x'.repeat(1025))).toThrow('invalid password: must be at most 1024 bytes');
    // characters, not UTF-16 units or bytes, for the minimum; bytes for the maximum
    expect(() => validatePassword('🔑'.repeat(8))).not.toThrow();
    expect(() => validatePassword('🔑'.repeat(7))).toThrow(/at least 8/);
    expect(() => validatePassword('é'.repeat(513))).toThrow(/at most 1024 bytes/);
    try {
      validatePassword('short');
    } catch (err) {
      expect((err as ValidationError).field).toBe('password');
    }
    await expect(hashPassword('short')).rejects.toThrow(ValidationError);
  });
});
