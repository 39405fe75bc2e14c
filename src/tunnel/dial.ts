// Connector-side dialers: TLS 1.3 straight to the edge (ALPN postern/2), or — for networks
// that only let web traffic out — CONNECT through an HTTP proxy, TLS, then a WebSocket.
import http from 'node:http';
import net from 'node:net';
import tls from 'node:tls';
import type { Duplex } from 'node:stream';
import WebSocket, { createWebSocketStream } from 'ws';
import { TUNNEL_ALPN, TUNNEL_WEBSOCKET_PATH } from './protocol.js';
import { PosternError, errorMessage } from '../errors.js';

export interface TunnelCredentials {
  readonly caPem: string;
  readonly certPem: string;
  readonly keyPem: string;
}

export interface EdgeAddress {
  readonly host: string;
  readonly port: number;
  /** Name the edge's certificate must carry (defaults to host). */
  readonly servername?: string;
}

export interface DialOptions {
  edge: EdgeAddress;
  credentials: TunnelCredentials;
  /** `http://[user:pass@]proxy:port`: use the WebSocket fallback through this proxy. */
  proxy?: URL;
  /** Use the WebSocket transport even without a proxy. */
  websocket?: boolean;
  timeoutMs?: number;
}

export async function dialTunnel(options: DialOptions): Promise<Duplex> {
  const timeoutMs = options.timeoutMs ?? 10_000;
  if (options.proxy || options.websocket) return dialWebSocket(options, timeoutMs);
  const socket = await connectTls(options, [TUNNEL_ALPN], undefined, timeoutMs);
  if (socket.alpnProtocol !== TUNNEL_ALPN) {
    socket.destroy();
    throw new PosternError('tunnel_closed', `edge ${options.edge.host}:${options.edge.port} does not speak ${TUNNEL_ALPN}`, { retryable: true });
  }
  return socket;
}

function connectTls(options: DialOptions, alpn: string[], over: Duplex | undefined, timeoutMs: number): Promise<tls.TLSSocket> {
  const { edge, credentials } = options;
  return new Promise((resolve, reject) => {
    const socket = tls.connect({
      ...(over ? { socket: over } : { host: edge.host, port: edge.port }),
      servername: edge.servername ?? edge.host,
      ca: credentials.caPem,
      cert: credentials.certPem,
      key: credentials.keyPem,
      minVersion: 'TLSv1.3',
      ALPNProtocols: alpn,
    });
    const timer = setTimeout(() => socket.destroy(new Error(`timed out after ${timeoutMs} ms`)), timeoutMs);
    socket.once('secureConnect', () => {
      clearTimeout(timer);
      socket.setNoDelay(true);
      resolve(socket);
    });
    socket.once('error', (err) => {
      clearTimeout(timer);
      reject(new PosternError('tunnel_closed', `cannot reach edge ${edge.host}:${edge.port}: ${errorMessage(err)}`, { cause: err, retryable: true }));
    });
  });
}

/** Opens a raw TCP path to `edge` through an HTTP proxy's CONNECT. */
export function proxyConnect(proxy: URL, edge: EdgeAddress, timeoutMs: number): Promise<net.Socket> {
  return new Promise((resolve, reject) => {
    const headers: Record<string, string> = { host: `${edge.host}:${edge.port}` };
    if (proxy.username) {
      headers['proxy-authorization'] = 'Basic ' + Buffer.from(`${decodeURIComponent(proxy.username)}:${decodeURIComponent(proxy.password)}`).toString('base64');
    }
    const req = http.request({ host: proxy.hostname, port: Number(proxy.port || 80), method: 'CONNECT', path: `${edge.host}:${edge.port}`, headers, timeout: timeoutMs });
    req.once('connect', (res, socket, head) => {
      if (res.statusCode !== 200) {
        socket.destroy();
        return reject(new PosternError('tunnel_closed', `proxy ${proxy.host} refused CONNECT: HTTP ${res.statusCode}`, { retryable: true }));
      }
      if (head.length > 0) socket.unshift(head);
      resolve(socket);
    });
    req.once('timeout', () => req.destroy(new Error(`proxy ${proxy.host} timed out`)));
    req.once('error', (err) => reject(new PosternError('tunnel_closed', `cannot reach proxy ${proxy.host}: ${errorMessage(err)}`, { cause: err, retryable: true })));
    req.end();
  });
}

async function dialWebSocket(options: DialOptions, timeoutMs: number): Promise<Duplex> {
  const { edge } = options;
  const raw = options.proxy ? await proxyConnect(options.proxy, edge, timeoutMs) : undefined;
  const secure = await connectTls(options, ['http/1.1'], raw, timeoutMs);
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(`wss://${edge.servername ?? edge.host}:${edge.port}${TUNNEL_WEBSOCKET_PATH}`, {
      createConnection: () => secure,
      handshakeTimeout: timeoutMs,
      perMessageDeflate: false,
    });
    ws.once('open', () => resolve(createWebSocketStream(ws)));
    ws.once('unexpected-response', (_req, res) => {
      secure.destroy();
      reject(new PosternError('tunnel_closed', `edge refused the WebSocket tunnel: HTTP ${res.statusCode}`, { retryable: true }));
    });
    ws.once('error', (err) => reject(new PosternError('tunnel_closed', `WebSocket tunnel failed: ${errorMessage(err)}`, { cause: err, retryable: true })));
  });
}
