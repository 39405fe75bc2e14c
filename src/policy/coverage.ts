// Which of the sockets a policy names it can actually govern: a policy in namespace N covers
// sockets in N and below only, so naming a socket elsewhere would silently do nothing.
import { namespaceCovers } from './compile.js';
import { socketNamespace } from './socket-auth.js';
import type { PolicyDocument } from './types.js';

export interface NamedSocket {
  readonly name: string;
  readonly tags: Readonly<Record<string, string>>;
}

export interface PolicyCoverage {
  /** Named sockets the policy governs. */
  readonly covered: readonly string[];
  /** Named sockets in a namespace the policy's does not cover. */
  readonly outside: readonly { readonly name: string; readonly namespace: string }[];
  /** Named sockets that do not exist (yet). */
  readonly unknown: readonly string[];
}

/** For policies attached by name; tag-attached and namespace-wide ones cover whatever matches. */
export function policyCoverage(document: Pick<PolicyDocument, 'namespace' | 'sockets'>, sockets: readonly NamedSocket[]): PolicyCoverage {
  const byName = new Map(sockets.map((s) => [s.name, s]));
  const policyNamespace = document.namespace ?? '';
  const covered: string[] = [];
  const outside: { name: string; namespace: string }[] = [];
  const unknown: string[] = [];
  for (const name of document.sockets ?? []) {
    const socket = byName.get(name);
    if (!socket) unknown.push(name);
    else if (namespaceCovers(policyNamespace, socketNamespace(socket))) covered.push(name);
    else outside.push({ name, namespace: socketNamespace(socket) });
  }
  return { covered, outside, unknown };
}

/** The one line `policy apply` refuses with when a named socket is out of the policy's reach. */
export function outsideMessage(policyNamespace: string, socket: { name: string; namespace: string }): string {
  return `socket ${socket.name} is in namespace "${socket.namespace}" which is not under ${policyNamespace}: tag it namespace=${policyNamespace} or put the policy in "${socket.namespace}"`;
}
