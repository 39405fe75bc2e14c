// CSRF double-submit for the control host's forms (sign-in, CLI-login approval): a random
// token in a `__Host-` cookie (SameSite=Strict) that each form posts back in a hidden field.
import type { FastifyReply, FastifyRequest } from 'fastify';
import { randomBytes } from 'node:crypto';
import { parseCookies } from '../identity/index.js';

const CSRF_COOKIE = '__Host-postern_csrf';
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
  return typeof submitted === 'string' && cookie !== undefined && submitted.length === cookie.length && submitted === cookie;
}
