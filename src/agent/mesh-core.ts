// The pure part of the agents' mesh (mesh.ts, mesh-http.ts): how a destination service is named
// on the wire (TLS server name, ALPN, headers), the request context a mesh decision is made
// with, the check of the server's SVID the sender runs, and the audit events of a flow.
import type { PeerCertificate } from 'node:tls';
import { X509Certificate } from 'node:crypto';
import { PosternError } from '../errors.js';
import { observedRecord } from '../policy/index.js';
import type { Action, Decision, RequestContext } from '../policy/index.js';
import type { NewAuditEvent } from '../reporting/index.js';
import type { MeshAuthority, VerifiedService, AssertedUser } from './mesh-types.js';
import type { LocalProcess } from './process.js';

/** Both ends refuse any other protocol: a mesh listener is not an HTTPS server for browsers. */
export const MESH_ALPN = 'postern-mesh/1';
/** The JWT-SVID the sending agent adds to each HTTP request (audience: the destination's SPIFFE id). */
export const SVID_HEADER = 'x-postern-svid';
/** The caller's SPIFFE id, as the receiving agent verified it, for the service behind it. */
export const SERVICE_HEADER = 'x-postern-service';
const SERVER_NAME_SUFFIX = '.svc.postern.internal';

export interface ServiceName {
  readonly namespace: string;
  readonly name: string;
}

/** A service and its identity as the policies see it: its labels are the tags of a `kind: 'service'` socket. */
export interface MeshService extends ServiceName {
  readonly spiffeId: string;
  readonly labels: Readonly<Record<string, string>>;
}

/** `orders.shop.svc.postern.internal`: the SNI that tells the receiving agent which of its services is asked for. */
export function meshServerName(service: ServiceName): string {
  return `${service.name}.${service.namespace}${SERVER_NAME_SUFFIX}`;
}

/** `shop/orders` → its name parts. */
export function parseServiceRef(ref: string): ServiceName {
  const [namespace, name, ...rest] = ref.split('/');
  if (!namespace || !name || rest.length > 0) throw new PosternError('config_invalid', `"${ref}" is not namespace/name`);
  return { namespace, name };
}

export interface ContextFacts {
  readonly clientIp: string;
  readonly at: Date;
  readonly action: Action;
  /** The person the calling service acts for (a verified Postern assertion). */
  readonly user?: AssertedUser;
}

/** What a mesh decision is about: the destination service, and the calling service (and the person it acts for). */
export function serviceContext(destination: MeshService, caller: VerifiedService, facts: ContextFacts): RequestContext {
  return {
    socket: { kind: 'service', name: destination.name, namespace: destination.namespace, tags: destination.labels },
    principal: {
      service: { id: caller.spiffeId, labels: caller.labels },
      ...(facts.user ? { user: { id: facts.user.id, email: facts.user.email, groups: facts.user.groups } } : {}),
    },
    clientIp: facts.clientIp,
    at: facts.at,
    action: facts.action,
  };
}

/**
 * The sender's check of the server it reached (tls checkServerIdentity): the authority accepts
 * its SVID (our CA, valid, one URI SAN, a declared service whose agent is not revoked) and that
 * SVID names exactly the destination. Undefined when it passes, else the refusal.
 */
export function checkDestinationSvid(authority: MeshAuthority, cert: PeerCertificate, expectedSpiffeId: string): Error | undefined {
  if (!cert.raw) return new PosternError('certificate_invalid', `the server for ${expectedSpiffeId} sent no certificate`);
  const verified = authority.verifyX509Svid(new X509Certificate(cert.raw).toString());
  if (!verified.ok) return new PosternError('certificate_invalid', `the server for ${expectedSpiffeId} is refused: ${verified.reason}`);
  if (verified.service.spiffeId !== expectedSpiffeId) {
    return new PosternError('certificate_invalid', `the server is ${verified.service.spiffeId}, not ${expectedSpiffeId}`);
  }
  return undefined;
}

/** "process /usr/bin/x (uid 0)". */
export function describeProcess(process: Pick<LocalProcess, 'exe' | 'uid'>): string {
  return `process ${process.exe} (uid ${process.uid})`;
}

/** One side of a flow in its events: the service, the agent that speaks for it and the labels the decision saw. */
function flowParty(service: MeshService | VerifiedService, agentId: string): Record<string, unknown> {
  return { spiffeId: service.spiffeId, agentId, labels: { ...service.labels } };
}

/** What every event of one flow (or one request) repeats: who called whom, from where. */
export interface FlowBase {
  readonly actor: string;
  readonly socket: string;
  readonly clientIp: string;
  readonly details: Readonly<Record<string, unknown>>;
}

export function flowBase(destination: MeshService, destinationAgent: string, caller: VerifiedService, clientIp: string, protocol: 'tcp' | 'http'): FlowBase {
  return {
    actor: caller.spiffeId, socket: destination.spiffeId, clientIp,
    details: { protocol, caller: flowParty(caller, caller.agentId), callee: flowParty(destination, destinationAgent) },
  };
}

/** What observe mode adds to a flow's or request's record (observedRecord), as the flow's audit event. */
export function observedEvent(decision: Decision, base: FlowBase, detail: string): NewAuditEvent | undefined {
  const record = observedRecord(decision, detail);
  return record && { ...base, ...record, details: { ...base.details, ...record.details } };
}

/** A live flow the receiving agent decides again after every change of the authority's view. */
export interface OpenFlow {
  /** Undefined to keep it, else why it must end now. */
  recheck(): string | undefined;
  /** Ends it; `reason` goes into its flow.close. */
  close(reason: string): void;
}
