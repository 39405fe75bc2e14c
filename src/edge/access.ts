// Small adapters of the edge around access decisions: the path HTTP rules match, the label of
// the rule that decided and the reason of a refusal, as audit records and 403 pages carry them,
// and ids for live connections.
import { randomBytes } from 'node:crypto';
import type tls from 'node:tls';
import type { Logger } from 'pino';
import { SESSION_URI_PREFIX } from '../identity/index.js';
import type { NewAuditEvent, GeoLookup } from '../reporting/index.js';
import type { TunnelHub } from '../tunnel/index.js';
import type { LiveRegistry } from './live-registry.js';
import type { EdgeView } from './view.js';
import { explain, ruleLabel } from '../policy/index.js';
import type { Decision, PolicySet, RequestContext } from '../policy/index.js';

/** The deciding rule's label for audit records, '' when no rule decided. */
export function decidingRule(decision: Decision): string {
  return decision.rule ? ruleLabel(decision.rule) : '';
}

/** The request path without its query, as HTTP rules match it. */
export function requestPath(url: string | undefined): string {
  const path = (url ?? '/').split('?')[0] ?? '/';
  return path.startsWith('/') ? path : `/${path}`;
}

/** The summary and, for "no rule allows", why each allow rule did not match (a few). */
export function denialDetail(context: RequestContext, policies: PolicySet, decision: Decision): string {
  if (decision.reason !== 'no-rule-allowed') return decision.summary;
  const misses = explain(context, policies).rules.filter((r) => r.effect === 'allow' && r.outcome !== 'matched').slice(0, 3);
  return misses.length === 0 ? decision.summary : `${decision.summary}: ${misses.map((r) => `${ruleLabel(r)}: ${r.detail}`).join('; ')}`;
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

/** What the edge hands every handler of whole connections (`tls` and `ssh` sockets). */
export interface ConnectionHandlerOptions {
  readonly view: () => EdgeView;
  readonly hub: TunnelHub;
  readonly audit: (event: NewAuditEvent) => void;
  readonly live: LiveRegistry;
  readonly logger: Logger;
  readonly geo?: GeoLookup;
  readonly now: () => Date;
  /** The believed client address of a connection (PROXY protocol from trusted proxies resolved). */
  readonly clientIp: (socket: tls.TLSSocket) => string;
}
