// Which sockets a connector may serve: those that name it (join token, `socket update
// --connector`) and those whose tags match its tag selector. Pure; the edge feeds it from the
// snapshot and refuses every other announcement, so a second connector cannot take a share of
// a socket's traffic by announcing its name.

export interface BindableSocket {
  readonly name: string;
  readonly type: string;
  readonly tags: Readonly<Record<string, string>>;
  readonly connectors: readonly string[];
}

export interface BindableConnector {
  readonly id: string;
  readonly revokedAt: string | null;
  readonly socketTags: Readonly<Record<string, string>> | null;
}

export type Binding = 'direct' | 'tags';

export type RefusalCode = 'unknown-socket' | 'type-mismatch' | 'not-bound' | 'connector-revoked';

export interface Refusal {
  readonly name: string;
  readonly code: RefusalCode;
  readonly reason: string;
}

export interface AnnouncementDecision {
  readonly accepted: string[];
  readonly rejected: Refusal[];
}

/** Every pair of a non-empty selector must be among the tags; an empty or absent one matches nothing. */
export function selectorMatches(selector: Readonly<Record<string, string>> | null, tags: Readonly<Record<string, string>>): boolean {
  if (selector === null) return false;
  const pairs = Object.entries(selector);
  return pairs.length > 0 && pairs.every(([key, value]) => Object.hasOwn(tags, key) && tags[key] === value);
}

/** How the connector is bound to the socket, or undefined when it is not. */
export function bindingOf(socket: BindableSocket, connector: BindableConnector): Binding | undefined {
  if (connector.revokedAt !== null) return undefined;
  if (socket.connectors.includes(connector.id)) return 'direct';
  return selectorMatches(connector.socketTags, socket.tags) ? 'tags' : undefined;
}

/** http and https sockets are served alike (HTTP requests); tls and ssh each only as themselves. */
function servedAs(type: string): string {
  return type === 'https' ? 'http' : type;
}

/** Decides a connector's announcements (in order) against the current sockets. */
export function decideAnnouncements(
  connectorId: string,
  connector: BindableConnector | undefined,
  announced: readonly { name: string; type: string }[],
  socketNamed: (name: string) => BindableSocket | undefined,
): AnnouncementDecision {
  const accepted: string[] = [];
  const rejected: Refusal[] = [];
  for (const { name, type } of announced) {
    const socket = socketNamed(name);
    if (!connector || connector.revokedAt !== null) {
      rejected.push({ name, code: 'connector-revoked', reason: `connector ${connectorId} is revoked or unknown` });
    } else if (!socket) {
      rejected.push({ name, code: 'unknown-socket', reason: `socket "${name}" does not exist (create it with \`postern socket create\`)` });
    } else if (servedAs(socket.type) !== servedAs(type)) {
      rejected.push({ name, code: 'type-mismatch', reason: `socket "${name}" is of type ${socket.type}, the connector serves it as ${type}` });
    } else if (bindingOf(socket, connector) === undefined) {
      rejected.push({ name, code: 'not-bound', reason: `socket "${name}" is not bound to connector ${connectorId} (bind it with \`postern socket update ${name} --add-connector ${connectorId}\`)` });
    } else {
      accepted.push(name);
    }
  }
  return { accepted, rejected };
}
