// The client registry: storage, secrets (sha-256 digests), in-memory cache.
export { ConflictError, NotFoundError, ValidationError } from './errors.ts';
export { digestSecret, generateClientSecret, secretMatches, verifyClientSecret, type SecretDigests } from './secrets.ts';
export {
  AUTH_METHODS,
  CLIENT_TTLS,
  ClientInput,
  ClientPatch,
  GRANT_TYPES,
  SECRET_AUTH_METHODS,
  checkClientSettings,
  createClient,
  deleteClient,
  generateClientId,
  getClient,
  getClientRecord,
  listClients,
  rotateClientSecret,
  updateClient,
  usesSecret,
  type AuthMethod,
  type ClientRecord,
  type ClientSettings,
  type ClientView,
  type GrantType,
  type JwkSet,
  type Page,
} from './store.ts';
export { createClientRegistry, type ClientRegistry } from './registry.ts';
export { inTransaction, type DbOrTx, type Tx } from './tx.ts';
export { CLIENT_ID, SCOPE_TOKEN } from './validation.ts';
