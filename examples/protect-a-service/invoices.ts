// "Protecting a service in five minutes" (docs/security-model.md): a plain
// node:http service that accepts only Gatehouse access tokens for its own API.
//
// In your own service the import is `from 'gatehouse/verify'`; inside this
// repository the library is imported by path (the package's `exports` point
// at dist/, which exists only after `npm run build`).
import http from 'node:http';
import { createVerifier, requireScopes, type AuthenticatedRequest } from '../../src/verify/index.ts';

// 1. One verifier for this API: Gatehouse's issuer URL and this API's identifier.
const verifier = createVerifier({
  issuer: process.env.ISSUER ?? 'http://localhost:3000',
  audience: 'https://invoices.example.com',
});

// 2. One guard per permission: the scopes a route needs.
const canRead = requireScopes(verifier, ['invoices:read'], { realm: 'invoices' });
const canWrite = requireScopes(verifier, ['invoices:write'], { realm: 'invoices' });

const invoices = [{ id: 'inv-1', customer: 'acme', amount: 12_000 }];

function json(res: http.ServerResponse, status: number, body: unknown): void {
  res.statusCode = status;
  res.setHeader('content-type', 'application/json');
  res.end(JSON.stringify(body));
}

// 3. Every route goes through its guard: no token, a token for another API,
//    an expired or forged one → 401; a missing scope → 403 (with WWW-Authenticate).
const server = http.createServer((req, res) => {
  const done = (err?: unknown) => {
    if (err) json(res, 500, { error: 'server_error' });
  };
  if (req.method === 'GET' && req.url === '/invoices') {
    void canRead(req, res, (err) => {
      if (err) return done(err);
      const { client_id, sub } = (req as AuthenticatedRequest).auth; // who is calling, for your audit log
      console.log(`GET /invoices by client ${client_id} (sub ${sub})`);
      json(res, 200, { invoices });
    });
  } else if (req.method === 'POST' && req.url === '/invoices') {
    void canWrite(req, res, (err) => (err ? done(err) : json(res, 201, { created: true })));
  } else {
    json(res, 404, { error: 'not_found' });
  }
});

server.listen(Number(process.env.PORT ?? 8080), '127.0.0.1', () => {
  console.log(`invoices API listening on http://127.0.0.1:${(server.address() as { port: number }).port}`);
});
process.once('SIGTERM', () => {
  server.close();
  server.closeAllConnections();
});
