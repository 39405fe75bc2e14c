// The HTTP socket proxy: each user request becomes one tunnel stream to a connector;
// WebSocket (and any Upgrade) requests become raw byte streams after their head.
import { constants as h2 } from 'node:http2';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Duplex } from 'node:stream';
import type { TLSSocket } from 'node:tls';
import type { Logger } from 'pino';
import { header } from '../tunnel/protocol.js';
import type { TunnelHub } from '../tunnel/edge-side.js';
import { PosternError, isPosternError } from '../errors.js';
import type { ErrorCode } from '../errors.js';
import { sendProblem, sendRawProblem } from './error-page.js';
import type { EdgeProblem } from './error-page.js';
import { requestHead, upstreamHeaders } from './forwarding.js';
import type { ForwardingFacts, UpstreamIdentity } from './forwarding.js';
import { stripHopByHop } from './headers.js';
import { joinStreams } from './pipe.js';
import type { PipeResult } from './pipe.js';
import type { SocketRecord } from '../store/types.js';

export interface HttpProxyOptions {
  hub: TunnelHub;
  logger: Logger;
  /** The believed client address (trusted proxies resolved). */
  clientIp: (req: IncomingMessage) => string;
}

/** Told when an upgraded stream is joined (with its live byte counters) and when it has closed. */
export interface UpgradeObserver {
  opened(counters: PipeResult): void;
  closed(): void;
}

function facts(req: IncomingMessage, clientIp: string): ForwardingFacts {
  return {
    clientIp,
    host: String(req.headers.host ?? ''),
    proto: (req.socket as TLSSocket).encrypted ? 'https' : 'http',
  };
}

export function normalizeIp(address: string): string {
  return address.startsWith('::ffff:') ? address.slice(7) : address;
}

function problemFrom(err: unknown, socket: string): EdgeProblem {
  if (isPosternError(err)) return { status: err.httpStatus, code: err.code, detail: err.message };
  return { status: 502, code: 'tunnel_closed', detail: `the tunnel to socket "${socket}" failed` };
}

export class HttpSocketProxy {
  constructor(private readonly options: HttpProxyOptions) {}

  handleRequest(req: IncomingMessage, res: ServerResponse, socket: SocketRecord, identity?: UpstreamIdentity): void {
    let stream;
    try {
      stream = this.options.hub.openStream(socket.name, {
        ':method': req.method ?? 'GET',
        ':path': req.url ?? '/',
        ':authority': String(req.headers.host ?? `${socket.name}`),
        ':scheme': 'https',
        [header.socket]: socket.name,
        [header.kind]: 'http',
        ...upstreamHeaders(req.headers, facts(req, this.options.clientIp(req)), false, identity),
      }, { endStream: !hasBody(req) });
    } catch (err) {
      return sendProblem(req, res, problemFrom(err, socket.name));
    }
    stream.on('response', (headers) => {
      const status = Number(headers[':status'] ?? 502);
      const code = headers[header.error];
      if (typeof code === 'string') {
        stream.resume();
        return sendProblem(req, res, { status, code: code as ErrorCode, detail: `socket "${socket.name}": the connector reports ${code.replace(/_/g, ' ')}` });
      }
      res.writeHead(status, stripHopByHop(headers));
      stream.pipe(res);
    });
    stream.on('error', (err) => {
      this.options.logger.debug({ err, socket: socket.name }, 'tunnel stream failed');
      sendProblem(req, res, problemFrom(new PosternError('tunnel_closed', `the tunnel to socket "${socket.name}" closed mid-request`, { cause: err }), socket.name));
    });
    stream.on('close', () => {
      if (!res.writableEnded && stream.rstCode !== h2.NGHTTP2_NO_ERROR) {
        if (res.headersSent) res.destroy();
        else sendProblem(req, res, { status: 502, code: 'tunnel_closed', detail: `the tunnel to socket "${socket.name}" closed mid-request` });
      }
    });
    res.on('close', () => {
      if (!res.writableFinished && !stream.destroyed) stream.close(h2.NGHTTP2_CANCEL);
    });
    if (hasBody(req)) req.pipe(stream);
  }

  /** Upgrade (WebSocket): forward the head, then bytes both ways; the upstream answers 101 itself. */
  handleUpgrade(req: IncomingMessage, client: Duplex, head: Buffer, socket: SocketRecord, identity?: UpstreamIdentity, observer?: UpgradeObserver): void {
    client.pause();
    let stream;
    try {
      stream = this.options.hub.openStream(socket.name, { [header.socket]: socket.name, [header.kind]: 'tcp' });
    } catch (err) {
      return sendRawProblem(client, problemFrom(err, socket.name));
    }
    stream.write(requestHead(req.method ?? 'GET', req.url ?? '/', upstreamHeaders(req.headers, facts(req, this.options.clientIp(req)), true, identity)));
    if (head.length > 0) stream.write(head);
    stream.once('response', (headers) => {
      const code = headers[header.error];
      if (typeof code === 'string') {
        stream.close(h2.NGHTTP2_CANCEL);
        return sendRawProblem(client, { status: Number(headers[':status'] ?? 502), code: code as ErrorCode, detail: `socket "${socket.name}": the connector reports ${code.replace(/_/g, ' ')}` });
      }
      const counters = joinStreams(client, stream, () => observer?.closed());
      observer?.opened(counters);
    });
    stream.on('error', () => client.destroy());
  }
}

function hasBody(req: IncomingMessage): boolean {
  return req.headers['transfer-encoding'] !== undefined || (req.headers['content-length'] !== undefined && req.headers['content-length'] !== '0');
}
