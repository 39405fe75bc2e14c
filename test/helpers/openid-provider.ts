// A real OpenID provider (oidc-provider) on http://127.0.0.1 for sign-in tests without a real
// browser: its accounts' claims are set by the test (the claims an attacker's tenant would
// send), and its login and consent steps complete at once for the account named in `signInAs`.
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import Provider from 'oidc-provider';

export const OP_CLIENT_ID = 'postern';
export const OP_CLIENT_SECRET = 'a-client-secret-for-tests-only-0123456789';

export interface TestOpenIdProvider {
  readonly issuer: string;
  /** Account id (becomes `sub`) → the claims it sends besides `sub`; change them between sign-ins. */
  readonly accounts: Map<string, Record<string, unknown>>;
  /** The account the next login completes as. */
  signInAs: string;
  close(): Promise<void>;
}

export async function startOpenIdProvider(redirectUris: readonly string[]): Promise<TestOpenIdProvider> {
  const server = http.createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const issuer = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  const accounts = new Map<string, Record<string, unknown>>();
  const provider = new Provider(issuer, {
    clients: [{ client_id: OP_CLIENT_ID, client_secret: OP_CLIENT_SECRET, redirect_uris: [...redirectUris], grant_types: ['authorization_code'], response_types: ['code'] }],
    // `groups` comes only with the groups scope, as at Okta, Keycloak or Dex.
    claims: { openid: ['sub'], email: ['email', 'email_verified'], profile: ['name'], groups: ['groups'] },
    scopes: ['openid', 'email', 'profile', 'groups'],
    features: { devInteractions: { enabled: false } },
    cookies: { keys: ['test-cookie-key-0123456789abcdef'] },
    findAccount: (_ctx, sub) => {
      const claims = accounts.get(sub);
      return claims ? { accountId: sub, claims: () => ({ ...claims, sub }) } : undefined;
    },
  });
  const handle = provider.callback();
  const op: TestOpenIdProvider = {
    issuer, accounts, signInAs: '',
    close: () => new Promise<void>((resolve) => { server.closeAllConnections(); server.close(() => resolve()); }),
  };
  server.on('request', (req, res) => {
    if (!req.url?.startsWith('/interaction/')) return void handle(req, res);
    void (async () => {
      const details = await provider.interactionDetails(req, res);
      if (details.prompt.name === 'login') {
        return provider.interactionFinished(req, res, { login: { accountId: op.signInAs } }, { mergeWithLastSubmission: false });
      }
      const grant = details.grantId ? (await provider.Grant.find(details.grantId))! : new provider.Grant({ accountId: details.session!.accountId, clientId: String(details.params.client_id) });
      const missing = details.prompt.details as { missingOIDCScope?: string[]; missingOIDCClaims?: string[] };
      if (missing.missingOIDCScope) grant.addOIDCScope(missing.missingOIDCScope.join(' '));
      if (missing.missingOIDCClaims) grant.addOIDCClaims(missing.missingOIDCClaims);
      const grantId = await grant.save();
      return provider.interactionFinished(req, res, { consent: details.grantId ? {} : { grantId } }, { mergeWithLastSubmission: true });
    })().catch((err: unknown) => {
      res.statusCode = 500;
      res.end(String(err));
    });
  });
  return op;
}
