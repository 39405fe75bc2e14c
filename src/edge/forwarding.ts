// What the edge adds to and removes from a user's request before it goes upstream:
// hop-by-hop and internal headers out, client-sent identity headers out (always),
// X-Forwarded-* set from what the edge saw itself.
import type { IncomingHttpHeaders } from 'node:http';
import { stripHopByHop } from './headers.js';

/** Names only Postern may set; a client sending them is ignored, never believed. */
export const IDENTITY_HEADERS = ['x-auth-email', 'x-auth-user', 'x-auth-groups', 'x-postern-jwt-assertion'] as const;

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

export function upstreamHeaders(headers: IncomingHttpHeaders, facts: ForwardingFacts, keepUpgrade = false, identity?: UpstreamIdentity): Record<string, string | string[]> {
  const out = keepUpgrade ? withoutInternal({ ...headers }) : withoutInternal(stripHopByHop(headers));
  for (const name of IDENTITY_HEADERS) delete out[name];
  if (identity) Object.assign(out, identityHeaders(identity));
  delete out.forwarded;
  out['x-forwarded-for'] = facts.clientIp;
  out['x-forwarded-proto'] = facts.proto;
  out['x-forwarded-host'] = facts.host;
  out['x-real-ip'] = facts.clientIp;
  return out;
}

function withoutInternal(headers: Record<string, string | string[] | undefined>): Record<string, string | string[]> {
  const out: Record<string, string | string[]> = {};
  for (const [key, value] of Object.entries(headers)) {
    if (value === undefined || key.startsWith('postern-')) continue;
    out[key] = value;
  }
  return out;
}

/** Serializes an HTTP/1.1 request head (for upgrades, which travel as raw bytes). */
export function requestHead(method: string, url: string, headers: Record<string, string | string[]>): Buffer {
  let head = `${method} ${url} HTTP/1.1\r\n`;
  for (const [key, value] of Object.entries(headers)) {
    for (const item of Array.isArray(value) ? value : [value]) {
      if (/[\r\n]/.test(item)) continue;
      head += `${key}: ${item}\r\n`;
    }
  }
  return Buffer.from(head + '\r\n', 'latin1');
}
