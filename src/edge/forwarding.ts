// What the edge adds to and removes from a user's request before it goes upstream, and to an
// upstream's response before the client gets it. The request rules (identity headers, reserved
// names, Postern's cookies, X-Forwarded-*) live in src/identity, shared with the agent's mesh.
import { STATUS_CODES } from 'node:http';
import type { IncomingHttpHeaders } from 'node:http';
import { isPosternCookie, upstreamRequestHeaders } from '../identity/index.js';
import type { ForwardingFacts, UpstreamIdentity } from '../identity/index.js';
import { stripHopByHop } from '../tunnel/index.js';

export { IDENTITY_HEADERS, headerKey, identityHeaders, isReservedHeader, withoutPosternCookies } from '../identity/index.js';
export type { ForwardingFacts, UpstreamIdentity } from '../identity/index.js';

/** An upstream's response headers for the client: hop-by-hop out, and no Set-Cookie may touch Postern's cookies. */
export function clientResponseHeaders(headers: IncomingHttpHeaders): Record<string, string | string[]> {
  const out = stripHopByHop(headers);
  const setCookie = out['set-cookie'];
  if (setCookie !== undefined) {
    const kept = (Array.isArray(setCookie) ? setCookie : [setCookie]).filter((line) => !isPosternCookie(line));
    if (kept.length === 0) delete out['set-cookie'];
    else out['set-cookie'] = kept;
  }
  return out;
}

/** The request headers for the upstream (hop-by-hop ones out: upgrades travel as their own stream kind). */
export function upstreamHeaders(headers: IncomingHttpHeaders, facts: ForwardingFacts, identity?: UpstreamIdentity): Record<string, string | string[]> {
  return upstreamRequestHeaders(stripHopByHop(headers), facts, identity);
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
