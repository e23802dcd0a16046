// A software WebAuthn authenticator in Node, for tests and the bench: an
// ES256 key from node:crypto, registration ("none" attestation) and
// assertions built by hand as an authenticator would (authenticatorData,
// clientDataJSON, DER signature), with a counter we control.
import { createHash, createPrivateKey, generateKeyPairSync, randomBytes, sign, type KeyObject } from 'node:crypto';

const b64u = (b: Buffer | string) => (typeof b === 'string' ? Buffer.from(b, 'utf8') : b).toString('base64url');
const sha256 = (b: Buffer | string) => createHash('sha256').update(b).digest();

/** CBOR byte string header + bytes (lengths < 65536). */
function cborBytes(b: Buffer): Buffer {
  const head = b.length < 24 ? Buffer.from([0x40 + b.length]) : b.length < 256 ? Buffer.from([0x58, b.length]) : Buffer.from([0x59, b.length >> 8, b.length & 0xff]);
  return Buffer.concat([head, b]);
}
const cborText = (s: string) => Buffer.concat([Buffer.from([0x60 + s.length]), Buffer.from(s, 'utf8')]);

export interface RequestOptions {
  challenge: string;
  rpId?: string;
  allowCredentials?: { id: string }[];
}

export class SoftAuthenticator {
  readonly credentialId: string;
  readonly privateKey: KeyObject;
  readonly x: Buffer;
  readonly y: Buffer;
  counter = 0;

  constructor(
    readonly rpId: string,
    readonly origin: string,
    /** the WebAuthn user handle (base64url) of the account the credential belongs to */
    readonly userHandle: string,
  ) {
    const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
    this.privateKey = privateKey;
    const jwk = publicKey.export({ format: 'jwk' });
    this.x = Buffer.from(jwk.x!, 'base64url');
    this.y = Buffer.from(jwk.y!, 'base64url');
    this.credentialId = randomBytes(16).toString('base64url');
  }

  /** The COSE_Key of the public key (EC2, P-256, ES256). */
  cosePublicKey(): Buffer {
    return Buffer.concat([Buffer.from([0xa5, 0x01, 0x02, 0x03, 0x26, 0x20, 0x01, 0x21]), cborBytes(this.x), Buffer.from([0x22]), cborBytes(this.y)]);
  }

  /** PKCS#8 of the private key, base64 (CDP WebAuthn.addCredential). */
  pkcs8(): string {
    return createPrivateKey(this.privateKey.export({ format: 'pem', type: 'pkcs8' })).export({ format: 'der', type: 'pkcs8' }).toString('base64');
  }

  private authData(flags: number, extra: Buffer = Buffer.alloc(0)): Buffer {
    const counter = Buffer.alloc(4);
    counter.writeUInt32BE(this.counter >>> 0);
    return Buffer.concat([sha256(this.rpId), Buffer.from([flags]), counter, extra]);
  }

  /** The answer to a registration request (PublicKeyCredentialCreationOptionsJSON.challenge). */
  register(challenge: string, opts: { uv?: boolean } = {}): Record<string, unknown> {
    const credId = Buffer.from(this.credentialId, 'base64url');
    const len = Buffer.from([credId.length >> 8, credId.length & 0xff]);
    const attested = Buffer.concat([Buffer.alloc(16), len, credId, this.cosePublicKey()]);
    const authData = this.authData(0x01 | (opts.uv === false ? 0 : 0x04) | 0x40, attested);
    const attestationObject = Buffer.concat([Buffer.from([0xa3]), cborText('fmt'), cborText('none'), cborText('attStmt'), Buffer.from([0xa0]), cborText('authData'), cborBytes(authData)]);
    const clientDataJSON = JSON.stringify({ type: 'webauthn.create', challenge, origin: this.origin, crossOrigin: false });
    return {
      id: this.credentialId,
      rawId: this.credentialId,
      type: 'public-key',
      response: { clientDataJSON: b64u(clientDataJSON), attestationObject: b64u(attestationObject), transports: ['internal'] },
      clientExtensionResults: {},
      authenticatorAttachment: 'platform',
    };
  }

  /** The answer to a sign-in request; the counter goes up by one first (unless `counter` is given). */
  assert(challenge: string, opts: { uv?: boolean; counter?: number; origin?: string } = {}): Record<string, unknown> {
    this.counter = opts.counter ?? this.counter + 1;
    const authData = this.authData(0x01 | (opts.uv === false ? 0 : 0x04));
    const clientDataJSON = JSON.stringify({ type: 'webauthn.get', challenge, origin: opts.origin ?? this.origin, crossOrigin: false });
    const signature = sign('sha256', Buffer.concat([authData, sha256(clientDataJSON)]), this.privateKey);
    return {
      id: this.credentialId,
      rawId: this.credentialId,
      type: 'public-key',
      response: { clientDataJSON: b64u(clientDataJSON), authenticatorData: b64u(authData), signature: b64u(signature), userHandle: this.userHandle },
      clientExtensionResults: {},
      authenticatorAttachment: 'platform',
    };
  }
}

/** The WebAuthn options a page carries in its data-options attribute (HTML-unescaped, parsed). */
export function pageOptions(html: string, action: string): { challenge: string; allowCredentials?: { id: string }[] } {
  for (const m of html.matchAll(/<form[^>]*action="([^"]*)"[^>]*data-options="([^"]*)"/g)) {
    if (!m[1]!.endsWith(action)) continue;
    const json = m[2]!.replace(/&quot;/g, '"').replace(/&#39;/g, "'").replace(/&lt;/g, '<').replace(/&gt;/g, '>').replace(/&#96;/g, '`').replace(/&amp;/g, '&');
    return JSON.parse(json) as { challenge: string };
  }
  throw new Error(`no passkey form posting to …${action}`);
}
