// What the edge adds to and removes from a user's request before it goes upstream:
// hop-by-hop and internal headers out, client-sent identity headers out (always, whatever
// their spelling), Postern's own cookies out, X-Forwarded-* set from what the edge saw itself.
import { STATUS_CODES } from 'node:http';
import type { IncomingHttpHeaders } from 'node:http';
import { stripHopByHop } from '../tunnel/index.js';

/** Names only Postern may set; a client sending them is ignored, never believed. */
export const IDENTITY_HEADERS = ['x-auth-email', 'x-auth-user', 'x-auth-groups', 'x-postern-jwt-assertion'] as const;
/** Set by the edge from what it saw itself. */
const EDGE_SET_HEADERS = ['forwarded', 'x-forwarded-for', 'x-forwarded-proto', 'x-forwarded-host', 'x-real-ip'] as const;
const RESERVED_HEADERS: ReadonlySet<string> = new Set<string>([...IDENTITY_HEADERS, ...EDGE_SET_HEADERS]);

/**
 * A header name as CGI, WSGI and PHP servers read it (`HTTP_X_AUTH_EMAIL`): case-folded with
 * `_` and `-` alike, so `X_Auth-Email` and `x-auth_email` are both X-Auth-Email.
 */
export function headerKey(name: string): string {
  return name.toLowerCase().replace(/_/g, '-');
}

/** Whether only Postern may set a header of this name (identity, forwarding or internal). */
export function isReservedHeader(name: string): boolean {
  const key = headerKey(name);
  return RESERVED_HEADERS.has(key) || key.startsWith('postern-');
}

/** Postern's cookies (session, CSRF, sign-in state), with or without a `__Host-`/`__Secure-` prefix. */
const POSTERN_COOKIE = /^\s*(?:__host-|__secure-)?postern[_-]/i;

/** The Cookie header without Postern's own cookies; undefined when nothing is left. */
export function withoutPosternCookies(cookie: string): string | undefined {
  const kept = cookie.split(';').filter((pair) => pair.trim() !== '' && !POSTERN_COOKIE.test(pair));
  return kept.length === 0 ? undefined : kept.map((pair) => pair.trim()).join('; ');
}

/** An upstream's response headers for the client: hop-by-hop out, and no Set-Cookie may touch Postern's cookies. */
export function clientResponseHeaders(headers: IncomingHttpHeaders): Record<string, string | string[]> {
  const out = stripHopByHop(headers);
  const setCookie = out['set-cookie'];
  if (setCookie !== undefined) {
    const kept = (Array.isArray(setCookie) ? setCookie : [setCookie]).filter((line) => !POSTERN_COOKIE.test(line));
    if (kept.length === 0) delete out['set-cookie'];
    else out['set-cookie'] = kept;
  }
  return out;
}

/** The signed-in user as the upstream sees it (set only by the edge, after stripping the client's). */
export interface UpstreamIdentity {
  readonly userId: string;
  readonly email: string;
  readonly groups: readonly string[];
  readonly assertion: string;
}

/** Groups are comma-joined; a comma inside a group name is percent-encoded so the list stays unambiguous. */
export function identityHeaders(identity: UpstreamIdentity): Record<string, string> {
  return {
    'x-auth-email': identity.email,
    'x-auth-user': identity.userId,
    'x-auth-groups': identity.groups.map((group) => group.replace(/%/g, '%25').replace(/,/g, '%2C')).join(','),
    'x-postern-jwt-assertion': identity.assertion,
  };
}

export interface ForwardingFacts {
  readonly clientIp: string;
  readonly host: string;
  readonly proto: 'https' | 'http';
}

/** The request headers for the upstream (hop-by-hop ones out: upgrades travel as their own stream kind). */
export function upstreamHeaders(headers: IncomingHttpHeaders, facts: ForwardingFacts, identity?: UpstreamIdentity): Record<string, string | string[]> {
  const out = withoutReserved(stripHopByHop(headers));
  if (out.cookie !== undefined) {
    const cookie = withoutPosternCookies(String(out.cookie));
    if (cookie === undefined) delete out.cookie;
    else out.cookie = cookie;
  }
  if (identity) Object.assign(out, identityHeaders(identity));
  out['x-forwarded-for'] = facts.clientIp;
  out['x-forwarded-proto'] = facts.proto;
  out['x-forwarded-host'] = facts.host;
  out['x-real-ip'] = facts.clientIp;
  return out;
}

function withoutReserved(headers: Record<string, string | string[]>): Record<string, string | string[]> {
  const out: Record<string, string | string[]> = {};
  for (const [key, value] of Object.entries(headers)) {
    if (!isReservedHeader(key)) out[key] = value;
  }
  return out;
}

/** An HTTP/1.1 response head for a raw client socket (`extra`: lines the edge sets itself); values with CR or LF are dropped. */
export function responseHead(status: number, headers: Record<string, string | string[]>, extra = ''): string {
  let head = `HTTP/1.1 ${status} ${STATUS_CODES[status] ?? 'Unknown'}\r\n${extra}`;
  for (const [key, value] of Object.entries(headers)) {
    for (const item of Array.isArray(value) ? value : [value]) {
      if (!/[\r\n]/.test(item)) head += `${key}: ${item}\r\n`;
    }
  }
  return `${head}\r\n`;
}
