// "Set your password" pages behind an invitation link: the admin creates the account, the person
// chooses the password. The link dies once a password is set or when it expires.
import type { FastifyInstance, FastifyReply } from 'fastify';
import { sendPage } from './html-page.js';
import type { Store } from '../store/index.js';
import { passwordStamp, verifyInviteToken, checkPasswordPolicy, hashPassword } from '../identity/index.js';
import { isPosternError } from '../errors.js';
import { escapeHtml } from './login-page.js';

export interface InviteRoutesOptions {
  store: Store;
  inviteKey: Buffer;
  now?: () => Date;
}

function page(reply: FastifyReply, status: number, body: string) {
  return sendPage(reply, `<!doctype html><html><head><meta charset="utf-8"><title>Set your password · Postern</title>
<style>body{font:16px system-ui,sans-serif;max-width:24rem;margin:4rem auto;padding:0 1rem;color:#222}label{display:block;margin:.8rem 0}input{display:block;width:100%;padding:.4rem}.error{color:#a00}</style>
</head><body><h1>Set your password</h1>${body}</body></html>\n`, status);
}

function form(token: string, email: string, error?: string): string {
  return `${error ? `<p class="error" role="alert">${escapeHtml(error)}</p>` : ''}<p>for <strong>${escapeHtml(email)}</strong></p>
<form method="post" action="/auth/set-password"><input type="hidden" name="token" value="${escapeHtml(token)}">
<label>New password <input type="password" name="password" autocomplete="new-password" minlength="12" required></label>
<label>Again <input type="password" name="again" autocomplete="new-password" minlength="12" required></label>
<button type="submit">Set password</button></form>`;
}

export function registerInviteRoutes(app: FastifyInstance, options: InviteRoutesOptions): void {
  const now = options.now ?? (() => new Date());

  /** The invitation's user, if the link is genuine, unexpired and still unused. */
  const invited = async (token: string) => {
    const claims = verifyInviteToken(options.inviteKey, token, now());
    const user = await options.store.users.get(claims.userId);
    if (!user || user.disabledAt || passwordStamp(user.passwordHash) !== claims.stamp) {
      throw Object.assign(new Error('this invitation link has already been used'), { used: true });
    }
    return user;
  };
  const refuse = (reply: FastifyReply, err: unknown) =>
    page(reply, 400, `<p class="error">${escapeHtml(isPosternError(err) || err instanceof Error ? err.message : 'invalid link')}.</p>`);

  app.get('/auth/set-password', async (request, reply) => {
    const token = String((request.query as { token?: unknown }).token ?? '');
    try {
      const user = await invited(token);
      return page(reply, 200, form(token, user.email));
    } catch (err) {
      return refuse(reply, err);
    }
  });

  // No CSRF cookie needed: the form is only usable with the secret token it carries.
  app.post('/auth/set-password', async (request, reply) => {
    const body = (request.body ?? {}) as { token?: string; password?: string; again?: string };
    const token = String(body.token ?? '');
    let user;
    try {
      user = await invited(token);
    } catch (err) {
      return refuse(reply, err);
    }
    const password = String(body.password ?? '');
    if (password !== String(body.again ?? '')) return page(reply, 400, form(token, user.email, 'The two passwords differ.'));
    try {
      checkPasswordPolicy(password);
    } catch (err) {
      return page(reply, 400, form(token, user.email, isPosternError(err) ? err.message : 'That password cannot be used.'));
    }
    await options.store.users.update(user.id, { passwordHash: await hashPassword(password) });
    request.log.info({ user: user.id }, 'password set from an invitation');
    return reply.redirect('/auth/login', 303);
  });
}
