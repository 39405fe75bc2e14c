// The edge's side of access decisions: the policy set compiled once per snapshot (stored
// policies plus each socket's allow-list flags as a policy of its own), and adapters that turn
// a TLS connection or an HTTP request into the policy engine's RequestContext.

import { compilePolicies, socketAuthPolicy } from '../policy/index.js';
import type { Action, PolicyDocument, PolicySet, RequestContext } from '../policy/index.js';
import type { PolicyRecord, SocketRecord, UserRecord } from '../store/types.js';

/** A socket's namespace is its `namespace` tag (policies of `corp` cover sockets tagged `corp/...`). */
export function socketNamespace(socket: SocketRecord): string {
  return socket.tags.namespace ?? '';
}

/**
 * Stored policies and the sockets' allow-list policies, compiled together. A `tls` socket
 * always requires a Postern certificate, so without an allow-list it behaves like a sign-in
 * socket that lets any active user in.
 */
export function compileSnapshotPolicies(policies: readonly PolicyRecord[], sockets: Iterable<SocketRecord>): PolicySet {
  const inputs = policies.map((record) => ({ document: record.document as unknown as PolicyDocument, version: record.version }));
  for (const socket of sockets) {
    const auth = socket.type === 'tls' ? { ...socket.auth, cloudauth: true } : socket.auth;
    const document = socketAuthPolicy({ name: socket.name, auth });
    if (document) inputs.push({ document: { ...document, namespace: socketNamespace(socket) }, version: 0 });
  }
  return compilePolicies(inputs);
}

export interface ContextFacts {
  readonly socket: SocketRecord;
  readonly user: UserRecord;
  readonly clientIp: string;
  readonly country: string | undefined;
  readonly at: Date;
  readonly action: Action;
}

export function requestContext(facts: ContextFacts): RequestContext {
  const { socket, user } = facts;
  return {
    socket: { name: socket.name, namespace: socketNamespace(socket), tags: socket.tags },
    principal: { user: { id: user.id, email: user.email, groups: user.groups } },
    clientIp: facts.clientIp,
    ...(facts.country === undefined ? {} : { country: facts.country }),
    at: facts.at,
    action: facts.action,
  };
}

/** `namespace/policy#rule` or `policy#rule`, as audit records and 403 pages name a rule. */
export function ruleLabel(rule: { namespace: string; policy: string; rule: string } | undefined): string {
  if (!rule) return '';
  const name = rule.rule.startsWith(`${rule.policy}#`) ? rule.rule : `${rule.policy}#${rule.rule}`;
  return rule.namespace ? `${rule.namespace}/${name}` : name;
}

/** The request path without its query, as HTTP rules match it. */
export function requestPath(url: string | undefined): string {
  const path = (url ?? '/').split('?')[0] ?? '/';
  return path.startsWith('/') ? path : `/${path}`;
}
