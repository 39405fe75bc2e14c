// SAML 2.0 sign-in on the control host: SP metadata, the redirect-binding AuthnRequest and the
// assertion consumer service. The login's state (request id, socket, return path) rides in a
// signed, short-lived cookie named after the RelayState, so any control node can finish it.
// A valid response finds the user by its (IdP entity id, NameID) link, links or creates one
// (see src/identity/account-link.ts), and continues like a local sign-in.
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { sendPage } from './html-page.js';
import { randomBytes } from 'node:crypto';
import type { IdentityProviderRecord, Store } from '../store/index.js';
import type { SessionService } from './sessions.js';
import type { KeyCipher } from '../ca/index.js';
import { continueTo, signInTarget } from './auth-routes.js';
import { escapeHtml } from './login-page.js';
import { PosternError, isPosternError } from '../errors.js';
import {
  parseCookies,
  serializeSessionCookie,
  SAML_PROVIDER_NAME,
  SAML_STATE_COOKIE_PREFIX,
  isRelayState,
  newRelayState,
  newSamlRequestId,
  openSamlState,
  parseSamlConfig,
  samlAuthorizeUrl,
  samlLinkIssuer,
  samlMetadata,
  samlServiceProvider,
  samlSpKey,
  sealSamlState,
  validateSamlResponse,
} from '../identity/index.js';
import type { SamlProviderSettings, SamlServiceProvider, SpKey } from '../identity/index.js';
import { userForExternalSignIn } from './external-accounts.js';
import { secretContext } from './oidc-routes.js';

const STATE_SECRET = 'identity/saml-state-key';
/** How long a browser may spend at the IdP. */
const STATE_TTL_SECONDS = 600;
/** Signed responses with many groups are large. */
const ACS_BODY_LIMIT = 512 * 1024;

export interface SamlRoutesOptions {
  store: Store;
  sessions: SessionService;
  /** `https://<name>.<domain>[:port]` */
  socketOrigin: (name: string) => string;
  /** `https://<domain>[:port]`: the SP's entity id and ACS live under `<controlOrigin>/auth/saml/<name>/`. */
  controlOrigin: string;
  /** Seals the state cookie's HMAC key in the store (the master-key cipher). */
  cipher: KeyCipher;
  /** HMAC key of the state cookie, the same on every control node; default: a random key kept sealed in the store. */
  stateKey?: () => Promise<Buffer>;
  now?: () => Date;
}

export function registerSamlRoutes(app: FastifyInstance, options: SamlRoutesOptions): void {
  const { store, sessions } = options;
  const now = options.now ?? (() => new Date());
  const { controlOrigin } = options;

  let cachedKey: Promise<Buffer> | undefined;
  const stateKey = options.stateKey ?? (() => {
    cachedKey ??= (async () => {
      const sealed = await store.secrets.get(STATE_SECRET) ?? await store.secrets.putIfAbsent(STATE_SECRET, options.cipher.encrypt(randomBytes(32), STATE_SECRET));
      return options.cipher.decrypt(sealed, STATE_SECRET);
    })().catch((err: unknown) => {
      cachedKey = undefined;
      throw err;
    });
    return cachedKey;
  });

  const provider = async (name: unknown): Promise<{ record: IdentityProviderRecord; settings: SamlProviderSettings; sp: SamlServiceProvider; spKey: SpKey | undefined }> => {
    if (typeof name !== 'string' || !SAML_PROVIDER_NAME.test(name)) throw new PosternError('not_found', 'no such SAML identity provider');
    const record = await store.identityProviders.get(name);
    if (!record || record.kind !== 'saml' || record.disabledAt !== null) throw new PosternError('not_found', `no SAML identity provider "${name}"`);
    const settings = parseSamlConfig(record.config);
    // The provider's sealed secret is, for SAML, the SP private key (PEM).
    const privateKey = record.sealedSecret === null ? undefined : options.cipher.decrypt(record.sealedSecret, secretContext(record.name)).toString('utf8');
    return { record, settings, sp: samlServiceProvider(controlOrigin, record.name), spKey: samlSpKey(settings, privateKey) };
  };

  /** `claimed`: the email the IdP asserted, when it got that far (for the audit trail). */
  const failure = (request: FastifyRequest, reply: FastifyReply, err: unknown, back?: { socket?: string; returnTo: string }, claimed = '') => {
    const known = isPosternError(err);
    const status = known ? err.httpStatus : 500;
    if (status >= 500) request.log.error({ err }, 'SAML sign-in failed');
    else request.log.info({ code: known ? err.code : undefined, reason: (err as Error).message }, 'SAML sign-in refused');
    sessions.recordFailedLogin(claimed, String((request.params as Record<string, unknown>).name ?? ''), request.ip, known && status < 500 ? err.message : 'internal error');
    const message = known && status < 500 ? err.message : 'internal error (see the server log)';
    const again = `/auth/login${back?.socket ? `?${new URLSearchParams({ socket: back.socket, return_to: back.returnTo }).toString()}` : ''}`;
    return sendPage(reply, `<!doctype html><html><head><meta charset="utf-8"><title>Sign-in failed · Postern</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<style>body{font:16px system-ui,sans-serif;max-width:30rem;margin:4rem auto;padding:0 1rem;color:#222}.error{color:#a00}</style>
</head><body><h1>Sign-in failed</h1><p class="error" role="alert">${escapeHtml(message)}</p><p><a href="${escapeHtml(again)}">Try again</a></p></body></html>
`, status);
  };

  app.get('/auth/saml/:name/metadata', async (request, reply) => {
    const { settings, sp, spKey } = await provider((request.params as Record<string, unknown>).name);
    return reply.header('cache-control', 'no-cache').type('application/samlmetadata+xml; charset=utf-8').send(samlMetadata(settings, sp, spKey));
  });

  app.get('/auth/saml/:name/start', async (request, reply) => {
    const query = request.query as Record<string, unknown>;
    let target: { socket?: string; returnTo: string } | undefined;
    try {
      target = await signInTarget(options, query.socket, query.return_to);
      const { record, settings, sp, spKey } = await provider((request.params as Record<string, unknown>).name);
      const relay = newRelayState();
      const requestId = newSamlRequestId();
      const issuedAt = Math.floor(now().getTime() / 1000);
      const sealed = sealSamlState(await stateKey(), {
        relay, provider: record.name, requestId, ...(target.socket ? { socket: target.socket } : {}), returnTo: target.returnTo,
        issuedAt, expiresAt: issuedAt + STATE_TTL_SECONDS,
      });
      const location = await samlAuthorizeUrl(settings, sp, requestId, relay, spKey);
      // SameSite=None: the IdP posts the response back cross-site; the cookie binds it to this browser.
      void reply.header('set-cookie', `${SAML_STATE_COOKIE_PREFIX}${relay}=${sealed}; Max-Age=${STATE_TTL_SECONDS}; Path=/; Secure; HttpOnly; SameSite=None`);
      return reply.header('cache-control', 'no-store').redirect(location, 303);
    } catch (err) {
      return failure(request, reply, err, target);
    }
  });

  app.post('/auth/saml/:name/acs', { bodyLimit: ACS_BODY_LIMIT }, async (request, reply) => {
    const form = (request.body ?? {}) as Record<string, unknown>;
    let back: { socket?: string; returnTo: string } | undefined;
    let claimed = '';
    try {
      const { record, settings, sp, spKey } = await provider((request.params as Record<string, unknown>).name);
      const relay = form.RelayState;
      if (!isRelayState(relay)) throw new PosternError('identity_invalid', 'the SAML response carries no RelayState of this server (IdP-initiated sign-in is not supported); start from the sign-in page');
      const cookie = `${SAML_STATE_COOKIE_PREFIX}${relay}`;
      void reply.header('set-cookie', `${cookie}=; Max-Age=0; Path=/; Secure; HttpOnly; SameSite=None`);
      const state = openSamlState(await stateKey(), parseCookies(request.headers.cookie).get(cookie), { relay, provider: record.name, now: now() });
      back = { ...(state.socket ? { socket: state.socket } : {}), returnTo: state.returnTo };
      const login = await validateSamlResponse(settings, sp, String(form.SAMLResponse ?? ''), { requestId: state.requestId, issuedAt: new Date(state.issuedAt * 1000) }, spKey);
      claimed = login.identity.email;
      const identity = { ...login.identity, issuer: samlLinkIssuer(settings, record.id, login.issuer) };
      const user = await userForExternalSignIn(store, { identity, provider: record, syncGroups: settings.groupsAttribute !== undefined });
      const { session, secret } = await sessions.createBrowserSession(user, record.name, { clientIp: request.ip, userAgent: String(request.headers['user-agent'] ?? '') });
      request.log.info({ user: user.id, session: session.id, provider: record.name }, 'signed in with SAML');
      const maxAgeSeconds = Math.max(1, Math.floor((Date.parse(session.expiresAt) - now().getTime()) / 1000));
      void reply.header('set-cookie', serializeSessionCookie(secret, { maxAgeSeconds }));
      // Re-check the socket: it may have been deleted or lost sign-in while the browser was at the IdP.
      const target = await signInTarget(options, state.socket, state.returnTo);
      return await continueTo(options, reply, session, target.socket, target.returnTo);
    } catch (err) {
      return failure(request, reply, err, back, claimed);
    }
  });
}
