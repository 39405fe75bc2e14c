// What Postern adds to and removes from a request before an upstream gets it: client-sent
// identity and forwarding headers out (always, whatever their spelling), Postern's own cookies
// out, the identity headers (X-Auth-Email, X-Auth-User, X-Auth-Groups, the signed assertion)
// and X-Forwarded-* set from what the proxy saw itself. Shared by the edge (socket upstreams)
// and the agent (services behind the mesh), so both treat an upstream alike. Pure.

/** Names only Postern may set; a client sending them is ignored, never believed. */
export const IDENTITY_HEADERS = ['x-auth-email', 'x-auth-user', 'x-auth-groups', 'x-postern-jwt-assertion'] as const;
/** Set by the proxy from what it saw itself. */
const FORWARDING_HEADERS = ['forwarded', 'x-forwarded-for', 'x-forwarded-proto', 'x-forwarded-host', 'x-real-ip'] as const;
const RESERVED_HEADERS: ReadonlySet<string> = new Set<string>([...IDENTITY_HEADERS, ...FORWARDING_HEADERS]);

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

/** Whether a Cookie pair or a Set-Cookie line is one of Postern's cookies. */
export function isPosternCookie(text: string): boolean {
  return POSTERN_COOKIE.test(text);
}

/** The Cookie header without Postern's own cookies; undefined when nothing is left. */
export function withoutPosternCookies(cookie: string): string | undefined {
  const kept = cookie.split(';').filter((pair) => pair.trim() !== '' && !isPosternCookie(pair));
  return kept.length === 0 ? undefined : kept.map((pair) => pair.trim()).join('; ');
}

/** The signed-in user as the upstream sees it (set only by Postern, after stripping the client's). */
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

/** The request headers for the upstream, from headers that hop-by-hop ones are already out of. */
export function upstreamRequestHeaders(headers: Readonly<Record<string, string | string[]>>, facts: ForwardingFacts, identity?: UpstreamIdentity): Record<string, string | string[]> {
  const out: Record<string, string | string[]> = {};
  for (const [key, value] of Object.entries(headers)) {
    if (!isReservedHeader(key)) out[key] = value;
  }
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
