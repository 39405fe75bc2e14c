// Small adapters of the edge around access decisions: the path HTTP rules match, the label of
// the rule that decided and the reason of a refusal, as audit records and 403 pages carry them,
// and ids for live connections.
import { randomBytes } from 'node:crypto';
import type tls from 'node:tls';
import type { Logger } from 'pino';
import { vouchedClientIp } from '../ca/index.js';
import { SESSION_URI_PREFIX } from '../identity/index.js';
import { canonicalIp } from '../reporting/index.js';
import type { NewAuditEvent, GeoLookup } from '../reporting/index.js';
import type { TunnelHub } from '../tunnel/index.js';
import type { LiveRegistry } from './live-registry.js';
import type { EdgeView } from './view.js';
import { decidingRule, denialDetail, observedRecord } from '../policy/index.js';
import type { Decision } from '../policy/index.js';

export { decidingRule, denialDetail };

/** The request path without its query, as HTTP rules match it. */
export function requestPath(url: string | undefined): string {
  const path = (url ?? '/').split('?')[0] ?? '/';
  return path.startsWith('/') ? path : `/${path}`;
}

/** What an observe-mode event repeats of the request it is about. */
export type ObservedBase = Pick<NewAuditEvent, 'actor' | 'socket' | 'clientIp' | 'country' | 'sessionId' | 'connectionId'> & { readonly details: Readonly<Record<string, unknown>> };

/** The events observe mode adds to a decision's usual record (observedRecord), as this request's audit events. */
export function observedEvents(decision: Decision, base: ObservedBase, detail: string): NewAuditEvent[] {
  const record = observedRecord(decision, detail);
  return record ? [{ ...base, ...record, details: { ...base.details, ...record.details } }] : [];
}

/** A process-wide tag keeps ids of different edges apart (kills travel to every edge by id). */
const EDGE_TAG = randomBytes(4).toString('hex');
let connectionCounter = 0;

/** `conn_<edge tag><counter>`: unique across edges and restarts. */
export function newConnectionId(): string {
  return `conn_${EDGE_TAG}${(++connectionCounter).toString(36)}`;
}

/** What a Postern user certificate, verified in the TLS handshake, says. */
export interface CertificateFacts {
  readonly email: string | undefined;
  readonly sessionId: string | undefined;
}

export function certificateFacts(socket: tls.TLSSocket): CertificateFacts {
  const san = socket.authorized ? socket.getPeerCertificate().subjectaltname ?? '' : '';
  return {
    email: /(?:^|, )email:([^,\s]+)/.exec(san)?.[1]?.toLowerCase(),
    sessionId: new RegExp(`URI:${SESSION_URI_PREFIX}([A-Za-z0-9_-]+)`).exec(san)?.[1],
  };
}

/**
 * The client address of a whole connection (`tls` and `ssh` sockets): the one a verified client
 * certificate vouches for, else `peerIp` (the peer, or what a trusted proxy said).
 *
 * Believing the certificate is safe because of who can hold one that vouches: the name is in
 * Postern's own URN namespace, the handshake proved the certificate is our CA's, and the CA
 * writes that name only from signCsr's `clientIp` (never from a CSR or a caller's `uris`), which
 * only the web terminal passes. The terminal makes a fresh key in the control plane's memory for
 * each dial; neither key nor certificate reaches the browser or disk. So whoever presents one is
 * the control plane, or someone who holds the CA's root key and could mint any identity anyway.
 * What stays is the blast radius of a leak: a certificate that could outlive the terminal's few
 * minutes, or is not bound to a sign-in (whose end cuts it), is no terminal's and is not believed.
 */
export function connectionClientIp(socket: tls.TLSSocket, peerIp: string, now: Date, logger: Logger): string {
  if (!socket.authorized) return peerIp;
  const vouched = vouchedClientIp(socket.getPeerCertificate(), certificateFacts(socket), now);
  if (vouched.kind === 'vouched') return canonicalIp(vouched.ip);
  if (vouched.kind === 'refused') logger.warn({ peerIp, reason: vouched.reason }, 'a client certificate names a client address that is not believed');
  return peerIp;
}

/** What the edge hands every handler of whole connections (`tls` and `ssh` sockets). */
export interface ConnectionHandlerOptions {
  readonly view: () => EdgeView;
  readonly hub: TunnelHub;
  readonly audit: (event: NewAuditEvent) => void;
  readonly live: LiveRegistry;
  readonly logger: Logger;
  readonly geo?: GeoLookup;
  readonly now: () => Date;
  /** The believed client address of a connection (PROXY protocol from trusted proxies resolved, the web terminal's browser believed: connectionClientIp). */
  readonly clientIp: (socket: tls.TLSSocket) => string;
}
