// Tokens of a user grant minted directly with oidc-provider's own models (no
// browser flow): for introspection and revocation tests that need a
// grant-bound JWT access token and a refresh token of a given client.
import { randomUUID } from 'node:crypto';
import type { TestApp } from '../helpers/app.ts';
import { createUser } from '../sso/flow.ts';

/** A grant of a new person for `clientId` with `resource`'s `scope` as a 120 s RS256 JWT access token, and an offline refresh token. */
export async function userGrantTokens(t: TestApp, clientId: string, resource: string, scope: string) {
  const provider = t.gatehouse.provider();
  const client = (await provider.Client.find(clientId))!;
  // a real person: the tokens of a person who does not exist (or is disabled) stand nowhere
  const { id: accountId } = await createUser(t, `grant-${randomUUID()}@example.com`);
  const grant = new provider.Grant({ accountId, clientId });
  grant.addOIDCScope('openid offline_access');
  grant.addResourceScope(resource, scope);
  const grantId = await grant.save();
  const resourceServer = new provider.ResourceServer(resource, {
    audience: resource,
    scope,
    accessTokenTTL: 120,
    accessTokenFormat: 'jwt',
    jwt: { sign: { alg: 'RS256' } },
  });
  const accessToken = await new provider.AccessToken({ client, accountId, grantId, gty: 'authorization_code', scope, resourceServer }).save();
  const refreshToken = await new provider.RefreshToken({ client, accountId, grantId, gty: 'authorization_code', scope: 'openid offline_access' }).save();
  return { accountId, grantId, accessToken, refreshToken };
}
