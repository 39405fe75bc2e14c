// Browser sign-in through external OIDC / GitHub providers on the control host:
//   GET /auth/oidc/:name/start?socket=&return_to=  (also /auth/github/:name/start) → the provider
//   GET /auth/oidc/:name/callback                  → verify, find (by link) / link / create the user, session, continue
// The transaction (state, nonce, PKCE verifier, socket, return path) lives in a short-lived
// cookie sealed with the KeyCipher (AES-GCM, bound to the provider name), so any control node
// can finish a sign-in another one started. Email allow-lists are enforced at the edge.
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { sendPage } from './html-page.js';
import { IDENTITY_PROVIDER_NAME_PATTERN } from '../store/index.js';
import type { Store, IdentityProviderRecord } from '../store/index.js';
import type { KeyCipher } from '../ca/index.js';
import type { SessionService } from './sessions.js';
import { continueTo, signInTarget } from './auth-routes.js';
import { escapeHtml } from './login-page.js';
import { PosternError, errorMessage, isPosternError } from '../errors.js';
import { GithubClient, OidcClient, newTransaction, normalizeOidcConfig, parseCookies, serializeSessionCookie } from '../identity/index.js';
import type { AuthTransaction, GithubConfig, SignInClient } from '../identity/index.js';
import { userForExternalSignIn } from './external-accounts.js';

export interface OidcRoutesOptions {
  store: Store;
  sessions: SessionService;
  cipher: KeyCipher;
  /** `https://<domain>[:port]`: redirect URIs are `<controlOrigin>/auth/oidc/<name>/callback`. */
  controlOrigin: string;
  socketOrigin: (name: string) => string;
  now?: () => Date;
  /** Tests: how the GitHub client reaches GitHub. */
  fetch?: typeof fetch;
}

const TX_COOKIE_PREFIX = '__Host-postern_sso_';
const TX_TTL_MS = 10 * 60_000;

interface SealedTransaction extends AuthTransaction {
  provider: string;
  socket?: string;
  returnTo: string;
  expiresAt: number;
}

export function redirectUriFor(controlOrigin: string, name: string): string {
  return `${controlOrigin}/auth/oidc/${name}/callback`;
}

/** The cookie of one sign-in in progress is named after its state, so several tabs can sign in at once. */
function txCookieName(state: string): string {
  return TX_COOKIE_PREFIX + state.replace(/[^A-Za-z0-9_-]/g, '').slice(0, 16);
}

export function secretContext(name: string): string {
  return `identity-provider/${name}`;
}

/** The sign-in client for a stored provider (secret unsealed); throws config_invalid on bad settings. */
export function signInClientFor(record: IdentityProviderRecord, cipher: KeyCipher, fetchImpl?: typeof fetch): SignInClient {
  const secret = record.sealedSecret ? cipher.decrypt(record.sealedSecret, secretContext(record.name)).toString('utf8') : undefined;
  if (record.kind === 'oidc') return new OidcClient(normalizeOidcConfig(record.config as never), secret, fetchImpl);
  if (record.kind === 'github') {
    const config = record.config as unknown as GithubConfig;
    if (typeof config.client_id !== 'string' || !config.client_id) throw new PosternError('config_invalid', `GitHub provider "${record.name}" has no client id`);
    return new GithubClient(config, secret, fetchImpl);
  }
  throw new PosternError('config_invalid', `identity provider "${record.name}" is of kind ${record.kind}, not oidc or github`);
}

export function renderSignInError(reason: string): string {
  return `<!doctype html><html><head><meta charset="utf-8"><title>Sign-in failed · Postern</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<style>body{font:16px system-ui,sans-serif;max-width:32rem;margin:4rem auto;padding:0 1rem;color:#222}.error{color:#a00}</style>
</head><body><h1>Sign-in failed</h1><p class="error" role="alert" id="reason">${escapeHtml(reason)}</p><p><a href="/auth/login">Start again</a></p></body></html>
`;
}

export function registerOidcRoutes(app: FastifyInstance, options: OidcRoutesOptions): void {
  const { store, cipher } = options;
  const now = options.now ?? (() => new Date());
  /** One client per provider version: discovery is done once, redone when the record changes. */
  const clients = new Map<string, { updatedAt: string; client: SignInClient }>();

  const errorPage = (reply: FastifyReply, status: number, reason: string, clearCookie?: string) => {
    if (clearCookie) void reply.header('set-cookie', `${clearCookie}=; Path=/; Secure; HttpOnly; SameSite=Lax; Max-Age=0`);
    return sendPage(reply, renderSignInError(reason), status);
  };

  const provider = async (name: unknown): Promise<{ record: IdentityProviderRecord; client: SignInClient }> => {
    const record = typeof name === 'string' && IDENTITY_PROVIDER_NAME_PATTERN.test(name) ? await store.identityProviders.get(name) : undefined;
    if (!record || (record.kind !== 'oidc' && record.kind !== 'github')) throw new PosternError('not_found', `there is no sign-in provider "${String(name)}"`);
    if (record.disabledAt !== null) throw new PosternError('forbidden', `sign-in with "${record.name}" is disabled`);
    const cached = clients.get(record.name);
    if (cached && cached.updatedAt === record.updatedAt) return { record, client: cached.client };
    const client = signInClientFor(record, cipher, options.fetch);
    clients.set(record.name, { updatedAt: record.updatedAt, client });
    return { record, client };
  };

  const statusOf = (err: unknown): number => {
    if (!isPosternError(err)) return 500;
    if (err.code === 'identity_invalid') return err.retryable ? 502 : 400;
    return err.httpStatus;
  };

  const start = async (request: FastifyRequest, reply: FastifyReply) => {
    const { name } = request.params as { name?: string };
    const query = request.query as Record<string, unknown>;
    try {
      const { record, client } = await provider(name);
      const { socket, returnTo } = await signInTarget(options, query.socket, query.return_to);
      const tx = newTransaction();
      const url = await client.authorizationUrl(redirectUriFor(options.controlOrigin, record.name), tx);
      const sealed: SealedTransaction = { ...tx, provider: record.name, returnTo, expiresAt: now().getTime() + TX_TTL_MS, ...(socket ? { socket } : {}) };
      const value = cipher.encrypt(Buffer.from(JSON.stringify(sealed)), `sso-transaction/${record.name}`);
      // Lax, not Strict: the provider sends the browser back with a top-level cross-site GET.
      void reply.header('set-cookie', `${txCookieName(tx.state)}=${value}; Path=/; Secure; HttpOnly; SameSite=Lax; Max-Age=${TX_TTL_MS / 1000}`);
      return reply.header('cache-control', 'no-store').redirect(url.href, 303);
    } catch (err) {
      request.log.info({ provider: name, err: errorMessage(err) }, 'sign-in could not start');
      return errorPage(reply, statusOf(err), errorMessage(err));
    }
  };
  app.get('/auth/oidc/:name/start', start);
  app.get('/auth/github/:name/start', start);

  app.get('/auth/oidc/:name/callback', async (request, reply) => {
    const { name } = request.params as { name?: string };
    const query = request.query as Record<string, unknown>;
    const state = typeof query.state === 'string' ? query.state : '';
    const cookieName = txCookieName(state);
    /** The email the provider claimed, for the audit trail of a refusal. */
    let claimed = '';
    try {
      if (!state) {
        const detail = typeof query.error === 'string' ? `: ${query.error}${typeof query.error_description === 'string' ? ` (${query.error_description})` : ''}` : '';
        throw new PosternError('identity_invalid', `the identity provider sent no state parameter${detail}`);
      }
      const { record, client } = await provider(name);
      const sealed = parseCookies(request.headers.cookie).get(cookieName);
      if (!sealed) throw new PosternError('identity_invalid', 'the state parameter does not match a sign-in started in this browser (tampered, expired, or cookies blocked); please start again');
      let tx: SealedTransaction;
      try {
        tx = JSON.parse(cipher.decrypt(sealed, `sso-transaction/${record.name}`).toString('utf8')) as SealedTransaction;
      } catch {
        throw new PosternError('identity_invalid', 'the sign-in cookie was altered or belongs to another provider; please start again');
      }
      if (tx.provider !== record.name) throw new PosternError('identity_invalid', 'the sign-in was started with another provider');
      if (tx.expiresAt < now().getTime()) throw new PosternError('identity_invalid', 'the sign-in took too long and expired; please start again');
      // openid-client checks the full state, the PKCE verifier (at the token endpoint) and the nonce.
      const callbackUrl = new URL(redirectUriFor(options.controlOrigin, record.name));
      callbackUrl.search = new URL(request.url, options.controlOrigin).search;
      const identity = await client.finish(callbackUrl, tx);
      claimed = identity.email;
      const user = await userForExternalSignIn(store, { identity, provider: record, syncGroups: providesGroups(record) });
      const { session, secret } = await options.sessions.createBrowserSession(user, record.name, { clientIp: request.ip, userAgent: String(request.headers['user-agent'] ?? '') });
      request.log.info({ user: user.id, session: session.id, provider: record.name }, 'signed in');
      const maxAgeSeconds = Math.floor((Date.parse(session.expiresAt) - now().getTime()) / 1000);
      void reply.header('set-cookie', [
        serializeSessionCookie(secret, { maxAgeSeconds }),
        `${cookieName}=; Path=/; Secure; HttpOnly; SameSite=Lax; Max-Age=0`,
      ]);
      // The socket named in the sealed transaction is checked again (it may have changed since).
      const { socket, returnTo } = await signInTarget(options, tx.socket, tx.returnTo);
      return continueTo(options, reply, session, socket, returnTo);
    } catch (err) {
      request.log.info({ provider: name, err: errorMessage(err) }, 'sign-in refused');
      options.sessions.recordFailedLogin(claimed, String(name ?? ''), request.ip, errorMessage(err));
      return errorPage(reply, statusOf(err), isPosternError(err) || statusOf(err) < 500 ? errorMessage(err) : 'internal error (see the server log)', cookieName);
    }
  });
}

/** Whether the provider is set up to send groups (then the user's groups follow it). */
function providesGroups(record: IdentityProviderRecord): boolean {
  return record.kind === 'github'
    ? (record.config as { groups_from_orgs?: unknown }).groups_from_orgs === true
    : typeof (record.config as { groups_claim?: unknown }).groups_claim === 'string';
}
