// The browser session cookie of a socket host: a `__Host-` cookie (Secure, Path=/, no Domain,
// so host-only by construction) holding a random secret that the server stores only hashed.
// Cookie headers come from anyone, so parsing is bounded and never builds a plain object.
import { randomBytes as nodeRandomBytes } from 'node:crypto';
import { PosternError } from '../errors.js';
import { hashToken } from './tokens.js';

export const SESSION_COOKIE_NAME = '__Host-postern_session';

const ATTRIBUTES = 'Path=/; Secure; HttpOnly; SameSite=Lax';
const SECRET_BYTES = 32;
/** base64url of 32 bytes, unpadded. */
const SECRET_SHAPE = /^[A-Za-z0-9_-]{43}$/;
const COOKIE_NAME = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;
/** cookie-octet of RFC 6265: printable ASCII less space, DQUOTE, comma, semicolon and backslash. */
const COOKIE_VALUE = /^[\x21\x23-\x2b\x2d-\x3a\x3c-\x5b\x5d-\x7e]*$/;

export interface CookieLimits {
  /** Characters of the Cookie header read at most; a pair cut by the limit is dropped (default 16 KiB). */
  readonly maxLength?: number;
  /** Pairs read at most (default 200). */
  readonly maxPairs?: number;
}

export interface SessionSecret {
  /** Goes into the cookie, never into the store or a log. */
  readonly value: string;
  /** What the store keeps: hashToken(value). */
  readonly hash: string;
}

/** A new session secret: 32 random bytes, base64url. */
export function createSessionSecret(randomBytes: (size: number) => Buffer = nodeRandomBytes): SessionSecret {
  const value = randomBytes(SECRET_BYTES).toString('base64url');
  return { value, hash: hashToken(value) };
}

/** The stored form of a session secret read from a cookie. */
export function hashSessionSecret(value: string): string {
  return hashToken(value);
}

/** `Set-Cookie` value that stores `value` in the browser for `maxAgeSeconds`. */
export function serializeSessionCookie(value: string, options: { maxAgeSeconds: number }): string {
  if (!SECRET_SHAPE.test(value)) {
    throw new PosternError('bad_request', 'session cookie value must be a base64url session secret');
  }
  const { maxAgeSeconds } = options;
  if (!Number.isSafeInteger(maxAgeSeconds) || maxAgeSeconds < 1) {
    throw new PosternError('bad_request', `session cookie Max-Age must be a positive whole number of seconds (got ${maxAgeSeconds})`);
  }
  return `${SESSION_COOKIE_NAME}=${value}; Max-Age=${maxAgeSeconds}; ${ATTRIBUTES}`;
}

/** `Set-Cookie` value that deletes the session cookie (sign-out, revoked session). */
export function clearSessionCookie(): string {
  return `${SESSION_COOKIE_NAME}=; Max-Age=0; ${ATTRIBUTES}`;
}

/**
 * Name → value for a `Cookie` header (several headers are read in order). The first pair of
 * a name wins; malformed pairs are skipped; values are returned raw, without percent-decoding.
 */
export function parseCookies(header: string | readonly string[] | undefined, limits: CookieLimits = {}): Map<string, string> {
  const maxLength = limits.maxLength ?? 16 * 1024;
  const maxPairs = limits.maxPairs ?? 200;
  const cookies = new Map<string, string>();
  if (header === undefined) return cookies;
  let text = typeof header === 'string' ? header : header.join('; ');
  if (text.length > maxLength) {
    const cut = text.lastIndexOf(';', maxLength);
    text = cut < 0 ? '' : text.slice(0, cut);
  }
  let start = 0;
  for (let pairs = 0; start < text.length && pairs < maxPairs; pairs++) {
    let end = text.indexOf(';', start);
    if (end < 0) end = text.length;
    const pair = text.slice(start, end);
    start = end + 1;
    const eq = pair.indexOf('=');
    if (eq < 0) continue;
    const name = pair.slice(0, eq).trim();
    let value = pair.slice(eq + 1).trim();
    if (value.length >= 2 && value.startsWith('"') && value.endsWith('"')) value = value.slice(1, -1);
    if (!COOKIE_NAME.test(name) || !COOKIE_VALUE.test(value) || cookies.has(name)) continue;
    cookies.set(name, value);
  }
  return cookies;
}

/** The session secret from request headers, or undefined when absent or not shaped like one. */
export function readSessionCookie(headers: { readonly cookie?: string | readonly string[] | undefined }): string | undefined {
  const value = parseCookies(headers.cookie).get(SESSION_COOKIE_NAME);
  return value !== undefined && SECRET_SHAPE.test(value) ? value : undefined;
}
