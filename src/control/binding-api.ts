// Connector ↔ socket bindings in the API: connector references (an id, or the name of exactly
// one connector that is not revoked) resolved to ids, how a PATCH changes a socket's list
// (replace, add, remove), and the bound connectors a socket's representation lists.
// The request fields and the view's schema are in inventory-types.ts, with the other payloads the dashboard reads.
import type { z } from 'zod';
import { PosternError } from '../errors.js';
import type { ConnectorRecord, SocketRecord } from '../store/index.js';
import { bindingOf } from '../tunnel/index.js';
import type { boundConnectorView } from './inventory-types.js';

export type BoundConnector = z.infer<typeof boundConnectorView>;

/** The connector an id or a name refers to; throws not_found, or conflict when a name is ambiguous. */
export function resolveConnector(ref: string, connectors: readonly ConnectorRecord[]): ConnectorRecord {
  const byId = connectors.find((c) => c.id === ref);
  if (byId) return byId;
  const named = connectors.filter((c) => c.name === ref && c.revokedAt === null);
  if (named.length === 1) return named[0]!;
  if (named.length === 0) throw new PosternError('not_found', `connector "${ref}" does not exist (see \`postern connector ls\`)`);
  throw new PosternError('conflict', `connector name "${ref}" is ambiguous (${named.map((c) => c.id).join(', ')}): pass the id`);
}

/** The socket's next list of connector ids, or undefined when the body leaves it alone. */
export function nextBinding(
  current: readonly string[],
  body: { connectors?: string[] | undefined; add_connectors?: string[] | undefined; remove_connectors?: string[] | undefined },
  connectors: readonly ConnectorRecord[],
): string[] | undefined {
  const { connectors: replace, add_connectors: add, remove_connectors: remove } = body;
  if (replace === undefined && add === undefined && remove === undefined) return undefined;
  if (replace !== undefined && (add !== undefined || remove !== undefined)) {
    throw new PosternError('bad_request', 'connectors replaces the list: pass it alone, or use add_connectors / remove_connectors');
  }
  const ids = (refs: readonly string[]) => refs.map((ref) => resolveConnector(ref, connectors).id);
  if (replace !== undefined) return [...new Set(ids(replace))];
  const removed = new Set(ids(remove ?? []));
  return [...new Set([...current, ...ids(add ?? [])])].filter((id) => !removed.has(id));
}

/** Every connector that may serve the socket now, and how it is bound. */
export function boundConnectors(socket: SocketRecord, connectors: readonly ConnectorRecord[]): BoundConnector[] {
  const out: BoundConnector[] = [];
  for (const connector of connectors) {
    const binding = bindingOf(socket, connector);
    if (binding) out.push({ id: connector.id, name: connector.name, binding });
  }
  return out;
}
