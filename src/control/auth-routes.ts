// Browser sign-in on the control host: the login form (local accounts), CSRF double-submit,
// rate limiting, and the hand-off of a session to a socket host through a one-time code.
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { randomBytes } from 'node:crypto';
import type { Store, SessionRecord } from '../store/types.js';
import type { SessionService } from './sessions.js';
import { renderLoginPage } from './login-page.js';
import type { LoginPageModel } from './login-page.js';
import { LoginRateLimiter, loginRateLimitKey } from '../identity/rate-limit.js';
import { verifyPassword } from '../identity/passwords.js';
import { clearSessionCookie, parseCookies, readSessionCookie, serializeSessionCookie } from '../identity/session-cookie.js';
import { safeReturnTo } from '../identity/redirects.js';
import { SOCKET_NAME_PATTERN } from '../store/names.js';

const CSRF_COOKIE = '__Host-postern_csrf';

export interface AuthRoutesOptions {
  store: Store;
  sessions: SessionService;
  /** `https://<name>.<domain>[:port]` */
  socketOrigin: (name: string) => string;
  limiter?: LoginRateLimiter;
  now?: () => Date;
}

interface LoginForm {
  email?: string;
  password?: string;
  csrf?: string;
  socket?: string;
  return_to?: string;
}

export function registerAuthRoutes(app: FastifyInstance, options: AuthRoutesOptions): void {
  const { store, sessions } = options;
  const limiter = options.limiter ?? new LoginRateLimiter();
  const now = options.now ?? (() => new Date());

  app.addContentTypeParser('application/x-www-form-urlencoded', { parseAs: 'string', bodyLimit: 16 * 1024 }, (_req, body, done) => {
    done(null, Object.fromEntries(new URLSearchParams(String(body))));
  });

  /** Only cloudauth sockets take part; the return path is kept relative to the socket host. */
  const target = async (socketParam: unknown, returnToParam: unknown): Promise<{ socket?: string; returnTo: string }> => {
    if (typeof socketParam !== 'string' || !SOCKET_NAME_PATTERN.test(socketParam)) return { returnTo: '/' };
    const socket = await store.sockets.get(socketParam);
    if (!socket || !socket.auth.cloudauth) return { returnTo: '/' };
    const origin = new URL(options.socketOrigin(socket.name));
    const safe = safeReturnTo(returnToParam, { allowedHosts: (host) => host === origin.host, fallback: '/' });
    const url = new URL(safe, origin);
    return { socket: socket.name, returnTo: url.pathname + url.search };
  };

  const csrfToken = (request: FastifyRequest, reply: FastifyReply): string => {
    const existing = parseCookies(request.headers.cookie).get(CSRF_COOKIE);
    if (existing && /^[A-Za-z0-9_-]{43}$/.test(existing)) return existing;
    const token = randomBytes(32).toString('base64url');
    void reply.header('set-cookie', `${CSRF_COOKIE}=${token}; Path=/; Secure; HttpOnly; SameSite=Strict`);
    return token;
  };

  const csrfValid = (request: FastifyRequest, submitted: unknown): boolean => {
    const cookie = parseCookies(request.headers.cookie).get(CSRF_COOKIE);
    return typeof submitted === 'string' && cookie !== undefined && submitted.length === cookie.length && submitted === cookie;
  };

  const page = (reply: FastifyReply, model: LoginPageModel, status = 200) =>
    reply.code(status).header('cache-control', 'no-store').header('x-frame-options', 'DENY').type('text/html; charset=utf-8').send(renderLoginPage(model));

  const continueTo = async (reply: FastifyReply, session: SessionRecord, socket: string | undefined, returnTo: string) => {
    if (!socket) return reply.redirect('/auth/login', 303);
    const code = await sessions.issueHandoff(session, socket, returnTo);
    return reply.header('cache-control', 'no-store').redirect(`${options.socketOrigin(socket)}/_postern/callback?code=${encodeURIComponent(code)}`, 303);
  };

  app.get('/auth/login', async (request, reply) => {
    const query = request.query as Record<string, unknown>;
    const { socket, returnTo } = await target(query.socket, query.return_to);
    const current = await sessions.fromSecret(readSessionCookie(request.headers));
    if (current && socket) return continueTo(reply, current.session, socket, returnTo);
    return page(reply, {
      csrf: csrfToken(request, reply),
      ...(socket ? { socket, returnTo } : {}),
      ...(current ? { signedInAs: current.user.email } : {}),
    });
  });

  app.post('/auth/login', async (request, reply) => {
    const form = (request.body ?? {}) as LoginForm;
    const { socket, returnTo } = await target(form.socket, form.return_to);
    const again = (error: string, status: number) => page(reply, { csrf: csrfToken(request, reply), email: form.email ?? '', error, ...(socket ? { socket, returnTo } : {}) }, status);
    if (!csrfValid(request, form.csrf)) return again('Your sign-in form expired; please try again.', 403);
    const email = String(form.email ?? '').trim().toLowerCase();
    const key = loginRateLimitKey(email, request.ip);
    const gate = limiter.check(key, now());
    if (!gate.allowed) return again(`Too many attempts; try again in ${Math.ceil(gate.retryAfterMs / 1000)} s.`, 429);
    const user = email ? await store.users.findByEmail(email) : undefined;
    const valid = await verifyPassword(String(form.password ?? ''), user?.passwordHash);
    if (!user || !valid || user.disabledAt) {
      limiter.recordFailure(key, now());
      request.log.info({ email, ip: request.ip }, 'sign-in refused');
      return again('Wrong email or password.', 401);
    }
    limiter.reset(key);
    const { session, secret } = await sessions.createBrowserSession(user, 'local', { clientIp: request.ip, userAgent: String(request.headers['user-agent'] ?? '') });
    request.log.info({ user: user.id, session: session.id }, 'signed in');
    const maxAgeSeconds = Math.floor((Date.parse(session.expiresAt) - now().getTime()) / 1000);
    void reply.header('set-cookie', serializeSessionCookie(secret, { maxAgeSeconds }));
    return continueTo(reply, session, socket, returnTo);
  });

  app.post('/auth/logout', async (request, reply) => {
    const form = (request.body ?? {}) as LoginForm;
    if (!csrfValid(request, form.csrf)) return page(reply, { csrf: csrfToken(request, reply), error: 'Your form expired; please try again.' }, 403);
    const current = await sessions.fromSecret(readSessionCookie(request.headers));
    if (current) await store.sessions.revoke(current.session.id, now().toISOString());
    return reply.header('set-cookie', clearSessionCookie()).redirect('/auth/login', 303);
  });
}
