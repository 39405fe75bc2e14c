// The kinds of socket and what each carries through the tunnel: HTTP requests (http, https) or
// raw TCP streams to a tcp:// upstream (tls, and ssh, which the edge terminates itself).

export const SOCKET_TYPES = ['http', 'https', 'tls', 'ssh', 'postgres'] as const;
export type SocketType = (typeof SOCKET_TYPES)[number];

const socketTypes: ReadonlySet<string> = new Set(SOCKET_TYPES);

export function isSocketType(type: string): type is SocketType {
  return socketTypes.has(type);
}

/** tls, ssh and postgres sockets reach their upstream as a raw TCP stream (a tcp:// upstream). */
export function carriesTcp(type: string): boolean {
  return type === 'tls' || type === 'ssh' || type === 'postgres';
}
