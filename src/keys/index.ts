// Signing keys: generation, encryption at rest, rotation, and the keyring
// oidc-provider signs with.
export { KeyDecryptionError, decryptPrivateJwk, encryptPrivateJwk } from './encryption.ts';
export {
  SIGNING_ALGS,
  ensureSigningKeys,
  listSigningKeys,
  loadKeyring,
  pruneRetiredKeys,
  rotateSigningKey,
  toPublicJwk,
  type KeyStatus,
  type Keyring,
  type RotationResult,
  type SigningAlg,
  type SigningKeyInfo,
} from './store.ts';
