// Private signing keys at rest: AES-256-GCM under KEY_ENCRYPTION_KEY (the KEK).
// Blob format: `v1.<iv>.<tag>.<ciphertext>`, each part base64url. The kid is
// the additional authenticated data, so a blob copied onto another row (another
// kid) fails to decrypt just like a tampered one.
import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto';
import type { JWK } from 'jose';

const VERSION = 'v1';
const IV_BYTES = 12; // the GCM standard nonce size
const TAG_BYTES = 16;

export class KeyDecryptionError extends Error {
  constructor(readonly kid: string) {
    super(`cannot decrypt signing key ${kid}: KEY_ENCRYPTION_KEY is wrong or the key was tampered with`);
    this.name = 'KeyDecryptionError';
  }
}

function checkKek(kek: Buffer): void {
  if (kek.length !== 32) throw new Error(`KEY_ENCRYPTION_KEY must be 32 bytes, got ${kek.length}`);
}

export function encryptPrivateJwk(jwk: JWK, kek: Buffer, kid: string): string {
  checkKek(kek);
  const iv = randomBytes(IV_BYTES);
  const cipher = createCipheriv('aes-256-gcm', kek, iv);
  cipher.setAAD(Buffer.from(kid, 'utf8'));
  const ciphertext = Buffer.concat([cipher.update(JSON.stringify(jwk), 'utf8'), cipher.final()]);
  const tag = cipher.getAuthTag();
  return [VERSION, ...[iv, tag, ciphertext].map((b) => b.toString('base64url'))].join('.');
}

export function decryptPrivateJwk(blob: string, kek: Buffer, kid: string): JWK {
  checkKek(kek);
  const [version, ...rest] = blob.split('.');
  const [iv, tag, ciphertext] = rest.map((p) => Buffer.from(p, 'base64url'));
  if (version !== VERSION || rest.length !== 3 || iv?.length !== IV_BYTES || tag?.length !== TAG_BYTES || !ciphertext) {
    throw new KeyDecryptionError(kid);
  }
  try {
    const decipher = createDecipheriv('aes-256-gcm', kek, iv, { authTagLength: TAG_BYTES });
    decipher.setAAD(Buffer.from(kid, 'utf8'));
    decipher.setAuthTag(tag);
    const plaintext = Buffer.concat([decipher.update(ciphertext), decipher.final()]);
    return JSON.parse(plaintext.toString('utf8')) as JWK;
  } catch {
    // GCM authentication failure: wrong KEK, wrong kid, or altered bytes.
    throw new KeyDecryptionError(kid);
  }
}
