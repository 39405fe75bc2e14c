// The first admin's setup link: while no enabled user is in the admin group, the server prints
// a one-time link whose page creates that first admin (email and password) and signs them in.
// The token is stateless and HMAC-signed with the invitation key (nothing of it is stored); it
// is good for a bounded time and only while no admin exists, so the first use ends it.
import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { sendPage } from './html-page.js';
import { z } from 'zod';
import type { Store } from '../store/index.js';
import type { NewAuditEvent } from '../reporting/index.js';
import { PosternError, isPosternError } from '../errors.js';
import { checkPasswordPolicy, hashPassword, serializeSessionCookie } from '../identity/index.js';
import type { SessionService } from './sessions.js';
import { isAdmin } from './roles.js';
import { escapeHtml } from './login-page.js';

/** How long a printed setup link stays good (a new one is printed at each start). */
export const SETUP_TOKEN_TTL_MS = 24 * 3600_000;
const PREFIX = 'pset1';

export interface SetupRoutesOptions {
  store: Store;
  sessions: SessionService;
  /** HMAC key of invitation links; setup tokens are signed with it under their own label. */
  inviteKey: Buffer;
  adminGroup: string;
  audit: (event: NewAuditEvent) => void;
  now?: () => Date;
}

function sign(key: Buffer, payload: string): string {
  return createHmac('sha256', key).update(`postern-setup:${payload}`).digest('base64url');
}

/** A setup token good until `expiresAt` (seconds since the epoch). */
export function createSetupToken(key: Buffer, expiresAt: number, nonce: Buffer = randomBytes(16)): string {
  const payload = Buffer.from(JSON.stringify({ e: expiresAt, n: nonce.toString('base64url') })).toString('base64url');
  return `${PREFIX}.${payload}.${sign(key, payload)}`;
}

/** Checks the token's signature and expiry; PosternError('token_invalid' | 'token_expired') otherwise. */
export function verifySetupToken(key: Buffer, token: string, now: Date): void {
  const [prefix, payload, mac, ...rest] = token.split('.');
  if (prefix !== PREFIX || !payload || !mac || rest.length > 0 || token.length > 512) throw new PosternError('token_invalid', 'this setup link is malformed');
  const expected = Buffer.from(sign(key, payload));
  const given = Buffer.from(mac);
  if (expected.length !== given.length || !timingSafeEqual(expected, given)) throw new PosternError('token_invalid', 'this setup link is not valid');
  let parsed: { e?: unknown };
  try {
    parsed = JSON.parse(Buffer.from(payload, 'base64url').toString('utf8')) as typeof parsed;
  } catch {
    throw new PosternError('token_invalid', 'this setup link is malformed');
  }
  if (typeof parsed.e !== 'number') throw new PosternError('token_invalid', 'this setup link is malformed');
  if (parsed.e * 1000 <= now.getTime()) throw new PosternError('token_expired', 'this setup link has expired: restart the server for a new one');
}

/** Whether an enabled user is in the admin group. */
export async function adminExists(store: Store, adminGroup: string): Promise<boolean> {
  return (await store.users.list()).some((user) => user.disabledAt === null && isAdmin(user, adminGroup));
}

/** The setup link to print at start, or undefined once an admin exists. */
export async function firstAdminSetupUrl(options: { store: Store; inviteKey: Buffer; adminGroup: string; controlOrigin: string; now?: Date }): Promise<string | undefined> {
  if (await adminExists(options.store, options.adminGroup)) return undefined;
  const expiresAt = Math.floor(((options.now ?? new Date()).getTime() + SETUP_TOKEN_TTL_MS) / 1000);
  return `${options.controlOrigin}/setup?token=${createSetupToken(options.inviteKey, expiresAt)}`;
}

function page(reply: FastifyReply, status: number, body: string) {
  return sendPage(reply, `<!doctype html><html><head><meta charset="utf-8"><title>Set up Postern</title>
<style>body{font:16px system-ui,sans-serif;max-width:24rem;margin:4rem auto;padding:0 1rem;color:#222}label{display:block;margin:.8rem 0}input{display:block;width:100%;padding:.4rem}.error{color:#a00}</style>
</head><body><h1>Set up Postern</h1>${body}</body></html>\n`, status);
}

function form(token: string, email: string, error?: string): string {
  return `${error ? `<p class="error" role="alert">${escapeHtml(error)}</p>` : ''}<p>Create the first admin: the account that signs in to the dashboard and runs the server.</p>
<form method="post" action="/setup"><input type="hidden" name="token" value="${escapeHtml(token)}">
<label>Email <input type="email" name="email" value="${escapeHtml(email)}" autocomplete="username" required></label>
<label>Password <input type="password" name="password" autocomplete="new-password" minlength="12" required></label>
<label>Again <input type="password" name="again" autocomplete="new-password" minlength="12" required></label>
<button type="submit">Create admin and sign in</button></form>`;
}

const done = (reply: FastifyReply) => page(reply, 410, '<p>Setup is done: an admin exists. <a href="/auth/login">Sign in</a>.</p>');
const refused = (reply: FastifyReply, err: unknown) => page(reply, 400, `<p class="error">${escapeHtml(isPosternError(err) ? err.message : 'this setup link is not valid')}.</p>`);
const emailSchema = z.string().trim().toLowerCase().pipe(z.email().max(254));

export function registerSetupRoutes(app: FastifyInstance, options: SetupRoutesOptions): void {
  const { store, adminGroup } = options;
  const now = options.now ?? (() => new Date());
  // Two posts of one link at once must not make two admins: the check and the create run one at a time.
  let queue: Promise<unknown> = Promise.resolve();
  const oneAtATime = <T>(task: () => Promise<T>): Promise<T> => {
    const run = queue.then(task, task);
    queue = run.catch(() => undefined);
    return run;
  };

  app.get('/setup', async (request, reply) => {
    if (await adminExists(store, adminGroup)) return done(reply);
    const token = String((request.query as { token?: unknown }).token ?? '');
    try {
      verifySetupToken(options.inviteKey, token, now());
    } catch (err) {
      return refused(reply, err);
    }
    return page(reply, 200, form(token, ''));
  });

  // No CSRF cookie needed: the form is only usable with the secret token it carries.
  app.post('/setup', (request, reply) => oneAtATime(() => setUp(request, reply)));

  const setUp = async (request: FastifyRequest, reply: FastifyReply) => {
    if (await adminExists(store, adminGroup)) return done(reply);
    const body = (request.body ?? {}) as { token?: unknown; email?: unknown; password?: unknown; again?: unknown };
    const token = String(body.token ?? '');
    try {
      verifySetupToken(options.inviteKey, token, now());
    } catch (err) {
      return refused(reply, err);
    }
    const typed = String(body.email ?? '');
    const again = (error: string) => page(reply, 400, form(token, typed, error));
    const email = emailSchema.safeParse(typed);
    if (!email.success) return again('That is not an email address.');
    const password = String(body.password ?? '');
    if (password !== String(body.again ?? '')) return again('The two passwords differ.');
    try {
      checkPasswordPolicy(password);
    } catch (err) {
      return again(isPosternError(err) ? err.message : 'That password cannot be used.');
    }
    if (await store.users.findByEmail(email.data)) {
      return again(`An account for ${email.data} exists already: choose another email, or add that account to the group "${adminGroup}" with the admin token.`);
    }
    const user = await store.users.create({ email: email.data, groups: [adminGroup], passwordHash: await hashPassword(password) });
    options.audit({
      type: 'admin.change', actor: user.email, clientIp: request.ip, reason: `user ${user.email} created by the first-admin setup link`,
      details: { entity: 'user', route: 'POST /setup', before: null, after: { id: user.id, email: user.email, groups: [...user.groups] } },
    });
    request.log.info({ user: user.id }, 'first admin created from the setup link');
    const { session, secret } = await options.sessions.createBrowserSession(user, 'local', { clientIp: request.ip, userAgent: String(request.headers['user-agent'] ?? '') });
    const maxAgeSeconds = Math.max(1, Math.floor((Date.parse(session.expiresAt) - now().getTime()) / 1000));
    return reply.header('set-cookie', serializeSessionCookie(secret, { maxAgeSeconds })).header('cache-control', 'no-store').redirect('/', 303);
  };
}
