// Every URL the app derives from a request (oidc-provider's endpoints and
// discovery, cookie security, WWW-Authenticate realms) uses the configured
// issuer's scheme and host, never the request's: like Keycloak's fixed
// hostname, a forged Host or X-Forwarded-Host header cannot change discovery,
// and a TLS-terminating proxy needs no forwarded headers for https URLs.
// TRUST_PROXY still lets X-Forwarded-For give the client address.
import type Koa from 'koa';

/**
 * Pins protocol, secure, host and hostname on the app's request prototype:
 * once, not per request (a property defined on each request object would
 * slow every later access to it).
 */
export function pinToIssuer(app: Koa, issuer: string): void {
  const url = new URL(issuer);
  const secure = url.protocol === 'https:';
  Object.defineProperties(app.request, {
    protocol: { value: secure ? 'https' : 'http', configurable: true },
    secure: { value: secure, configurable: true },
    host: { value: url.host, configurable: true },
    hostname: { value: url.hostname, configurable: true },
  });
}
