// Browser sign-in on the control host: the login form (local accounts), CSRF double-submit,
// rate limiting (counted before the password check, per account and client address), and the hand-off of a session to a socket host through a one-time code.
import type { FastifyInstance, FastifyReply } from 'fastify';
import { sendPage } from './html-page.js';
import { SOCKET_NAME_PATTERN } from '../store/index.js';
import type { Store, SessionRecord } from '../store/index.js';
import type { SessionService } from './sessions.js';
import { renderLoginPage } from './login-page.js';
import type { LoginPageModel } from './login-page.js';
import {
  SignInThrottle,
  verifyPassword,
  clearSessionCookie,
  readSessionCookie,
  serializeSessionCookie,
  controlReturnTo,
  safeReturnTo,
} from '../identity/index.js';
import { clientNetwork } from '../reporting/index.js';
import { csrfToken, csrfValid } from './csrf.js';

export interface AuthRoutesOptions {
  store: Store;
  sessions: SessionService;
  /** `https://<name>.<domain>[:port]` */
  socketOrigin: (name: string) => string;
  throttle?: SignInThrottle;
  now?: () => Date;
}

interface LoginForm {
  email?: string;
  password?: string;
  csrf?: string;
  socket?: string;
  return_to?: string;
}

/** Where a sign-in continues: a cloudauth socket and a path on its host (never another host). */
export async function signInTarget(
  options: Pick<AuthRoutesOptions, 'store' | 'socketOrigin'>, socketParam: unknown, returnToParam: unknown,
): Promise<{ socket?: string; returnTo: string }> {
  // No socket: the sign-in may continue to a control-host page (CLI login), never elsewhere.
  if (typeof socketParam !== 'string' || !SOCKET_NAME_PATTERN.test(socketParam)) return { returnTo: controlReturnTo(returnToParam) ?? '/' };
  const socket = await options.store.sockets.get(socketParam);
  if (!socket || !socket.auth.cloudauth) return { returnTo: '/' };
  const origin = new URL(options.socketOrigin(socket.name));
  const safe = safeReturnTo(returnToParam, { allowedHosts: (host) => host === origin.host, fallback: '/' });
  const url = new URL(safe, origin);
  return { socket: socket.name, returnTo: url.pathname + url.search };
}

/** After any sign-in: hand the session to the socket host with a one-time code, or back to the login page. */
export async function continueTo(
  options: Pick<AuthRoutesOptions, 'sessions' | 'socketOrigin'>, reply: FastifyReply, session: SessionRecord, socket: string | undefined, returnTo: string,
): Promise<FastifyReply> {
  if (!socket) return reply.redirect(controlReturnTo(returnTo) ?? '/auth/login', 303);
  const code = await options.sessions.issueHandoff(session, socket, returnTo);
  return reply.header('cache-control', 'no-store').redirect(`${options.socketOrigin(socket)}/_postern/callback?code=${encodeURIComponent(code)}`, 303);
}

export function registerAuthRoutes(app: FastifyInstance, options: AuthRoutesOptions): void {
  const { store, sessions } = options;
  const throttle = options.throttle ?? new SignInThrottle();
  const now = options.now ?? (() => new Date());

  app.addContentTypeParser('application/x-www-form-urlencoded', { parseAs: 'string', bodyLimit: 16 * 1024 }, (_req, body, done) => {
    done(null, Object.fromEntries(new URLSearchParams(String(body))));
  });

  /** Only cloudauth sockets take part; the return path is kept relative to the socket host. */
  const target = (socketParam: unknown, returnToParam: unknown) => signInTarget(options, socketParam, returnToParam);
  /** A control-host page to continue to other than the start page, which every sign-in reaches anyway. */
  const controlPage = (returnTo: string) => (returnTo !== '/' ? controlReturnTo(returnTo) : undefined);

  const page = async (reply: FastifyReply, model: LoginPageModel, status = 200) => {
    const providers = (await store.identityProviders.list()).filter((p) => p.disabledAt === null).map((p) => ({ kind: p.kind, name: p.name, displayName: p.displayName }));
    return sendPage(reply, renderLoginPage({ ...model, providers }), status);
  };

  const continueToSocket = (reply: FastifyReply, session: SessionRecord, socket: string | undefined, returnTo: string) => continueTo(options, reply, session, socket, returnTo);

  app.get('/auth/login', async (request, reply) => {
    const query = request.query as Record<string, unknown>;
    const { socket, returnTo } = await target(query.socket, query.return_to);
    const current = await sessions.fromSecret(readSessionCookie(request.headers));
    if (current && (socket || controlPage(returnTo))) return continueToSocket(reply, current.session, socket, returnTo);
    return page(reply, {
      csrf: csrfToken(request, reply),
      ...(socket ? { socket, returnTo } : controlPage(returnTo) ? { returnTo } : {}),
      ...(current ? { signedInAs: current.user.email } : {}),
    });
  });

  app.post('/auth/login', async (request, reply) => {
    const form = (request.body ?? {}) as LoginForm;
    const { socket, returnTo } = await target(form.socket, form.return_to);
    const again = (error: string, status: number) => page(reply, { csrf: csrfToken(request, reply), email: form.email ?? '', error, ...(socket ? { socket, returnTo } : controlPage(returnTo) ? { returnTo } : {}) }, status);
    if (!csrfValid(request, form.csrf)) return again('Your sign-in form expired; please try again.', 403);
    const email = String(form.email ?? '').trim().toLowerCase();
    // request.ip is the client the edge resolved (behind trusted proxies too), not the load balancer.
    const gate = throttle.begin(email, clientNetwork(request.ip), now());
    if (!gate.allowed) {
      const seconds = Math.ceil(gate.retryAfterMs / 1000);
      void reply.header('retry-after', String(seconds));
      return again(`Too many attempts; try again in ${seconds} s.`, 429);
    }
    const user = email ? await store.users.findByEmail(email) : undefined;
    const valid = await verifyPassword(String(form.password ?? ''), user?.passwordHash);
    if (!user || !valid || user.disabledAt) {
      request.log.info({ email, ip: request.ip }, 'sign-in refused');
      sessions.recordFailedLogin(email, 'local', request.ip, user?.disabledAt ? 'account disabled' : 'wrong email or password');
      return again('Wrong email or password.', 401);
    }
    throttle.succeeded(gate.attempt);
    const { session, secret } = await sessions.createBrowserSession(user, 'local', { clientIp: request.ip, userAgent: String(request.headers['user-agent'] ?? '') });
    request.log.info({ user: user.id, session: session.id }, 'signed in');
    const maxAgeSeconds = Math.floor((Date.parse(session.expiresAt) - now().getTime()) / 1000);
    void reply.header('set-cookie', serializeSessionCookie(secret, { maxAgeSeconds }));
    return continueToSocket(reply, session, socket, returnTo);
  });

  app.post('/auth/logout', async (request, reply) => {
    const form = (request.body ?? {}) as LoginForm;
    if (!csrfValid(request, form.csrf)) return page(reply, { csrf: csrfToken(request, reply), error: 'Your form expired; please try again.' }, 403);
    const current = await sessions.fromSecret(readSessionCookie(request.headers));
    if (current) await store.sessions.revoke(current.session.id, now().toISOString());
    return reply.header('set-cookie', clearSessionCookie()).redirect('/auth/login', 303);
  });
}
