// The wire contract of the reverse tunnel (postern/2): the connector dials out and answers
// the multiplexer streams (mux.ts) the edge opens on that connection: one control stream,
// then one per user request or TCP connection.
import { z } from 'zod';
import { SOCKET_TYPES } from '../store/index.js';

export const TUNNEL_ALPN = 'postern/2';
/** The HTTP/2-based protocol of earlier connectors: still recognized, to refuse it with a reason. */
export const LEGACY_TUNNEL_ALPN = 'postern/1';
/** Path of the fallback: the same protocol carried over a WebSocket (through CONNECT proxies). */
export const TUNNEL_WEBSOCKET_PATH = '/_postern/tunnel/2';
/** The earlier connectors' WebSocket path: answered with 426 and the reason. */
export const LEGACY_TUNNEL_WEBSOCKET_PATH = '/_postern/tunnel';

/** What a connector of the earlier protocol is told (it logs it and keeps retrying). */
export function legacyRefusal(edgeId: string): string {
  return `edge ${edgeId} speaks tunnel protocol ${TUNNEL_ALPN}; upgrade this connector to the same Postern version as the edge`;
}
export const CONTROL_PATH = '/_postern/control';

export const header = {
  socket: 'postern-socket',
  kind: 'postern-kind',
  clientIp: 'postern-client-ip',
  error: 'postern-error',
  /**
   * `confirmed` on a request whose body ends with a trailer `postern-body: complete`: the
   * upstream request is finished only then, so a body the client broke off (or whose last
   * chunk was malformed) is never delivered as whole, whatever the stream's end looked like.
   */
  body: 'postern-body',
  /** On an `upgrade` request: the protocol asked for; on its response: the protocol the upstream switched to (101). */
  upgrade: 'postern-upgrade',
} as const;

/**
 * `http`: one request/response; `tcp`: raw bytes both ways (request body up, response body
 * down); `upgrade`: an HTTP request that turns into raw bytes only if the upstream answers 101.
 */
export type StreamKind = 'http' | 'tcp' | 'upgrade';

/** Streams the edge may hold open on one connection: more are refused, so a flood cannot exhaust the connector. */
export const MAX_TUNNEL_STREAMS = 65_536;

const socketAnnouncement = z.object({
  name: z.string().min(1).max(63),
  type: z.enum(SOCKET_TYPES),
});

/** Connector → edge, newline-delimited JSON on the control stream's response body. */
export const connectorMessage = z.discriminatedUnion('type', [
  z.object({ type: z.literal('hello'), connectorId: z.string(), version: z.string(), sockets: z.array(socketAnnouncement).max(1000) }),
  z.object({ type: z.literal('drain') }),
]);
export type ConnectorMessage = z.infer<typeof connectorMessage>;

/** Edge → connector, newline-delimited JSON on the control stream's request body. */
export const edgeMessage = z.discriminatedUnion('type', [
  z.object({ type: z.literal('welcome'), edgeId: z.string(), accepted: z.array(z.string()), rejected: z.array(z.object({ name: z.string(), reason: z.string() })) }),
  z.object({ type: z.literal('drain') }),
]);
export type EdgeMessage = z.infer<typeof edgeMessage>;

export const MAX_CONTROL_LINE = 256 * 1024;
