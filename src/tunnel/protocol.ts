// The wire contract of the reverse tunnel (postern/1): the connector dials out and serves
// HTTP/2 on that connection; the edge opens one stream per user request or TCP connection.
import { z } from 'zod';
import { SOCKET_TYPES } from '../store/socket-types.js';

export const TUNNEL_ALPN = 'postern/1';
/** Path of the fallback: the same HTTP/2 protocol carried over a WebSocket (through CONNECT proxies). */
export const TUNNEL_WEBSOCKET_PATH = '/_postern/tunnel';
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

/**
 * Flow-control windows: Node's 64 KiB defaults cap a stream at ~window/RTT; raising both the
 * per-stream and the per-session window on both ends is what lets bulk transfers run at link speed.
 */
export const STREAM_WINDOW = 8 * 1024 * 1024;
export const SESSION_WINDOW = 32 * 1024 * 1024;
export const h2Settings = { initialWindowSize: STREAM_WINDOW, maxFrameSize: 1024 * 1024, enablePush: false } as const;

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
