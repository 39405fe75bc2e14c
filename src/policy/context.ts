// The one way transports build a RequestContext from who is asking (a signed-in person) and
// the socket they ask for, so the edge, `policy test` and certificate issuance decide alike.
import { socketNamespace } from './socket-auth.js';
import type { Action, RequestContext } from './types.js';

export interface ContextFacts {
  readonly socket: { readonly name: string; readonly tags: Readonly<Record<string, string>> };
  readonly user: { readonly id: string; readonly email: string; readonly groups: readonly string[] };
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
