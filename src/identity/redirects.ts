// Where a login may send the browser afterwards (`return_to`), refusing open redirects, and the
// one-time code that carries a finished login from the control host to a socket's host.
import { randomBytes as nodeRandomBytes } from 'node:crypto';
import { PosternError } from '../errors.js';
import { hashToken } from './tokens.js';

export const RETURN_TO_MAX_LENGTH = 2048;

export interface ReturnToOptions {
  /**
   * Whether an absolute URL may point at this host: `URL.host`, lower-case, punycode, with the
   * port when it is not 443. Typically the control host or `<socket>.<domain>`.
   */
  readonly allowedHosts: (host: string) => boolean;
  /** Returned whenever `value` is refused. */
  readonly fallback: string;
}

// Printable ASCII only: no controls, spaces, or Unicode look-alikes that URL parsers strip or fold.
const PRINTABLE = /^[\x21-\x7e]+$/;
const BASE = 'https://return-to.invalid';

/**
 * `value` when it is safe to redirect to, normalized; otherwise `fallback`. Safe means an
 * absolute `https://` URL whose host `allowedHosts` accepts (credentials removed), or a path
 * starting with exactly one `/`. Backslashes, controls and over-long values are refused.
 */
export function safeReturnTo(value: unknown, options: ReturnToOptions): string {
  if (typeof value !== 'string' || value.length > RETURN_TO_MAX_LENGTH || !PRINTABLE.test(value)) {
    return options.fallback;
  }
  if (value.includes('\\')) return options.fallback;
  if (/^https:\/\//i.test(value)) return absolute(value, options);
  if (value.startsWith('/') && !value.startsWith('//')) return relative(value, options.fallback);
  return options.fallback;
}

/** `new URL` without the throw (URL.parse is missing from early Node 20 releases). */
function parseUrl(input: string, base?: string): URL | null {
  try {
    return new URL(input, base);
  } catch {
    return null;
  }
}

function absolute(value: string, options: ReturnToOptions): string {
  const url = parseUrl(value);
  if (url === null || url.protocol !== 'https:' || !options.allowedHosts(url.host)) {
    return options.fallback;
  }
  url.username = '';
  url.password = '';
  return url.href;
}

function relative(value: string, fallback: string): string {
  const url = parseUrl(value, BASE);
  if (url === null || url.origin !== BASE) return fallback;
  const path = `${url.pathname}${url.search}${url.hash}`;
  // Dot segments can collapse to `//host` (`/.//evil.example`): that would leave the host.
  return path.startsWith('//') ? fallback : path;
}

export interface HandoffCode {
  /** Goes into the redirect to the socket host, once. */
  readonly code: string;
  /** What the store keeps until the code is redeemed or expires. */
  readonly hash: string;
}

const HANDOFF_SHAPE = /^[A-Za-z0-9_-]{43}$/;

/** A one-time login code for the control host → socket host handoff: 32 random bytes, base64url. */
export function createHandoffCode(randomBytes: (size: number) => Buffer = nodeRandomBytes): HandoffCode {
  const code = randomBytes(32).toString('base64url');
  return { code, hash: hashToken(code) };
}

/** The stored form of a presented code; PosternError('token_invalid') when it cannot be one. */
export function hashHandoffCode(code: string): string {
  if (!HANDOFF_SHAPE.test(code)) throw new PosternError('token_invalid', 'the login code is malformed');
  return hashToken(code);
}

/** Control-host pages a sign-in may continue to besides the dashboard's: CLI login approval and the loopback start. */
export const CONTROL_RETURN_PATHS: readonly string[] = ['/device', '/auth/cli/start'];

/** First path segments the dashboard's pages never use: they keep their own routes and their 404s. */
const NOT_DASHBOARD_PAGES = new Set(['api', 'auth', '.well-known', 'metrics', 'setup', '_postern', 'assets']);

/** Whether `path` is one of the dashboard's pages (answered with index.html): no reserved prefix, no file extension. */
export function isDashboardPath(path: string): boolean {
  if (!path.startsWith('/') || path.startsWith('//')) return false;
  const segments = path.slice(1).split('/');
  if (NOT_DASHBOARD_PAGES.has(segments[0] ?? '')) return false;
  return !(segments.at(-1) ?? '').includes('.');
}

/**
 * A `return_to` on the control host itself: a relative path (as safeReturnTo allows) whose
 * pathname is a dashboard page (a deep link survives the sign-in) or exactly one of `paths`;
 * undefined otherwise. Absolute URLs are never accepted.
 */
export function controlReturnTo(value: unknown, paths: readonly string[] = CONTROL_RETURN_PATHS): string | undefined {
  const safe = safeReturnTo(value, { allowedHosts: () => false, fallback: '' });
  if (!safe.startsWith('/')) return undefined;
  const url = parseUrl(safe, BASE);
  if (url === null || url.origin !== BASE || !(isDashboardPath(url.pathname) || paths.includes(url.pathname))) return undefined;
  return `${url.pathname}${url.search}`;
}
