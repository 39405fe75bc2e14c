// CSRF double-submit for the control host: a random token in a `__Host-` cookie
// (SameSite=Strict) that each form posts back in a hidden field, and that the dashboard sends
// back in a header on every API change it makes with the session cookie.
import type { FastifyReply, FastifyRequest } from 'fastify';
import { randomBytes, timingSafeEqual } from 'node:crypto';
import { parseCookies } from '../identity/index.js';
import { PosternError } from '../errors.js';
import type { CsrfHeaderName } from './dashboard-types.js';

const CSRF_COOKIE = '__Host-postern_csrf';
/** The request header a browser's cookie-authenticated API change carries the token in. */
export const CSRF_HEADER: CsrfHeaderName = 'x-csrf-token';
const TOKEN_SHAPE = /^[A-Za-z0-9_-]{43}$/;

/** The request's CSRF token, or a new one set as a cookie on `reply`. */
export function csrfToken(request: FastifyRequest, reply: FastifyReply): string {
  const existing = parseCookies(request.headers.cookie).get(CSRF_COOKIE);
  if (existing && TOKEN_SHAPE.test(existing)) return existing;
  const token = randomBytes(32).toString('base64url');
  void reply.header('set-cookie', `${CSRF_COOKIE}=${token}; Path=/; Secure; HttpOnly; SameSite=Strict`);
  return token;
}

/** Whether the submitted form field matches the cookie. */
export function csrfValid(request: FastifyRequest, submitted: unknown): boolean {
  const cookie = parseCookies(request.headers.cookie).get(CSRF_COOKIE);
  if (typeof submitted !== 'string' || cookie === undefined || !TOKEN_SHAPE.test(cookie)) return false;
  const given = Buffer.from(submitted);
  const expected = Buffer.from(cookie);
  return given.length === expected.length && timingSafeEqual(given, expected);
}

/** Whether the request's CSRF header (sent once, not repeated) matches the cookie. */
export function csrfHeaderValid(request: FastifyRequest): boolean {
  return csrfValid(request, request.headers[CSRF_HEADER]);
}

/**
 * A browser's change through the API (any method but GET and HEAD) must carry the CSRF header
 * and, when it names an Origin, come from the control origin: another page on the same site
 * (a socket host is one) can make the browser send the cookie, but can read neither token.
 */
export function requireCsrfForChange(request: FastifyRequest, controlOrigin: string): void {
  if (request.method === 'GET' || request.method === 'HEAD') return;
  const origin = request.headers.origin;
  if (origin !== undefined && origin !== controlOrigin) {
    throw new PosternError('csrf_failed', `a change from ${String(origin).slice(0, 200)} is refused: the dashboard's requests come from ${controlOrigin}`);
  }
  if (!csrfHeaderValid(request)) throw new PosternError('csrf_failed', `a change made with the sign-in cookie must send the ${CSRF_HEADER} header (GET /api/v1/me gives it)`);
}
