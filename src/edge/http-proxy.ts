// The HTTP socket proxy: each user request becomes one tunnel stream to a connector. A
// WebSocket upgrade is a request too: its bytes flow raw only after the upstream answered
// 101, so nothing a client writes behind the head can reach the upstream undecided.
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Duplex } from 'node:stream';
import type { TLSSocket } from 'node:tls';
import type { Logger } from 'pino';
import { ResetCode, header } from '../tunnel/index.js';
import type { MuxHeaders, MuxStream, TunnelHub } from '../tunnel/index.js';
import { PosternError, isPosternError } from '../errors.js';
import type { ErrorCode } from '../errors.js';
import { sendProblem, sendRawProblem } from './error-page.js';
import type { EdgeProblem } from './error-page.js';
import { clientResponseHeaders, responseHead, upstreamHeaders } from './forwarding.js';
import type { ForwardingFacts, UpstreamIdentity } from './forwarding.js';
import { joinStreams } from './pipe.js';
import type { PipeResult } from './pipe.js';
import type { SocketRecord } from '../store/index.js';

export interface HttpProxyOptions {
  hub: TunnelHub;
  logger: Logger;
  /** The believed client address (trusted proxies resolved). */
  clientIp: (req: IncomingMessage) => string;
  /** A request body that sends nothing for this long is cut (408). */
  bodyIdleTimeoutMs: number;
  /** Open upstream streams one client address may hold on public sockets at once. */
  maxStreamsPerClient: number;
}

/** Told how an upgrade ended up: switched (with its live byte counters, head bytes included), refused by the upstream, and closed. */
export interface UpgradeObserver {
  opened(counters: PipeResult): void;
  answered(status: number): void;
  closed(): void;
}

function problemFrom(err: unknown, socket: string): EdgeProblem {
  if (isPosternError(err)) return { status: err.httpStatus, code: err.code, detail: err.message };
  return { status: 502, code: 'tunnel_closed', detail: `the tunnel to socket "${socket}" failed` };
}

function connectorProblem(headers: MuxHeaders, socket: string): EdgeProblem | undefined {
  const code = headers[header.error];
  if (typeof code !== 'string') return undefined;
  return { status: Number(headers[':status'] ?? 502), code: code as ErrorCode, detail: `socket "${socket}": the connector reports ${code.replace(/_/g, ' ')}` };
}

/** The only upgrade served: after a WebSocket's 101 the bytes are still the one connection that was decided. */
function websocketUpgrade(req: IncomingMessage): boolean {
  const tokens = String(req.headers.upgrade ?? '').split(',').map((t) => t.trim().toLowerCase());
  return tokens.length === 1 && tokens[0] === 'websocket';
}

export class HttpSocketProxy {
  /** Open upstream streams per client address, for public sockets. */
  private readonly openByClient = new Map<string, number>();

  constructor(private readonly options: HttpProxyOptions) {}

  handleRequest(req: IncomingMessage, res: ServerResponse, socket: SocketRecord, identity?: UpstreamIdentity): void {
    const clientIp = this.options.clientIp(req);
    const release = this.admit(socket, clientIp);
    if (!release) return sendProblem(req, res, this.tooMany(clientIp));
    const body = hasBody(req);
    let stream: MuxStream;
    try {
      stream = this.options.hub.openStream(socket.name, {
        ...this.requestHeaders(req, socket, clientIp, identity),
        [header.kind]: 'http',
        ...(body ? { [header.body]: 'confirmed' } : {}),
      }, { endStream: !body });
    } catch (err) {
      release();
      return sendProblem(req, res, problemFrom(err, socket.name));
    }
    stream.once('close', release);
    stream.on('response', (headers) => {
      const problem = connectorProblem(headers, socket.name);
      if (problem) {
        stream.resume();
        return sendProblem(req, res, problem);
      }
      res.writeHead(Number(headers[':status'] ?? 502), clientResponseHeaders(headers));
      stream.pipe(res);
    });
    stream.on('error', (err) => {
      this.options.logger.debug({ err, socket: socket.name }, 'tunnel stream failed');
      sendProblem(req, res, problemFrom(new PosternError('tunnel_closed', `the tunnel to socket "${socket.name}" closed mid-request`, { cause: err }), socket.name));
    });
    stream.on('close', () => {
      if (!res.writableEnded && stream.resetCode !== undefined) {
        if (res.headersSent) res.destroy();
        else sendProblem(req, res, { status: 502, code: 'tunnel_closed', detail: `the tunnel to socket "${socket.name}" closed mid-request` });
      }
    });
    res.on('close', () => {
      if (!res.writableFinished && !stream.destroyed) stream.reset(ResetCode.cancel);
    });
    if (body) this.pipeBody(req, res, stream, socket);
  }

  /**
   * The body goes up as it arrives, and is confirmed complete by a trailer only once Node's
   * parser has read the client's whole message: a body cut short or a malformed last chunk is
   * reset instead, so it never reaches the upstream as a whole request. A body that stalls is cut.
   */
  private pipeBody(req: IncomingMessage, res: ServerResponse, stream: MuxStream, socket: SocketRecord): void {
    let timer: NodeJS.Timeout | undefined;
    const stalled = () => {
      this.options.logger.info({ socket: socket.name, clientIp: this.options.clientIp(req) }, 'request body stalled; cutting the request');
      stream.reset(ResetCode.cancel);
      res.shouldKeepAlive = false;
      if (res.headersSent) return void req.socket.destroy();
      res.once('finish', () => req.socket.destroy());
      sendProblem(req, res, { status: 408, code: 'request_timeout', detail: `the request body sent nothing for ${this.options.bodyIdleTimeoutMs / 1000} s` });
    };
    const arm = () => {
      clearTimeout(timer);
      timer = setTimeout(stalled, this.options.bodyIdleTimeoutMs);
    };
    arm();
    req.on('data', arm);
    req.once('end', () => {
      clearTimeout(timer);
      if (stream.destroyed) return;
      if (req.complete) stream.endWithTrailers({ [header.body]: 'complete' });
      else stream.reset(ResetCode.cancel);
    });
    req.once('close', () => {
      clearTimeout(timer);
      if (!req.complete && !stream.destroyed) stream.reset(ResetCode.cancel);
    });
    req.pipe(stream, { end: false });
  }

  /**
   * A WebSocket: the head goes up as a request; raw bytes flow only once the upstream answered
   * 101. Any other answer is relayed as one response and the connection closes. Bytes the
   * client wrote behind the head wait until the switch.
   */
  handleUpgrade(req: IncomingMessage, client: Duplex, head: Buffer, socket: SocketRecord, identity?: UpstreamIdentity, observer?: UpgradeObserver): void {
    client.pause();
    if (!websocketUpgrade(req)) {
      return sendRawProblem(client, { status: 400, code: 'upgrade_not_supported', detail: `only WebSocket upgrades are served, not "${String(req.headers.upgrade ?? '')}"` });
    }
    const clientIp = this.options.clientIp(req);
    const release = this.admit(socket, clientIp);
    if (!release) return sendRawProblem(client, this.tooMany(clientIp));
    let stream: MuxStream;
    try {
      stream = this.options.hub.openStream(socket.name, {
        ...this.requestHeaders(req, socket, clientIp, identity),
        [header.kind]: 'upgrade',
        [header.upgrade]: 'websocket',
      });
    } catch (err) {
      release();
      return sendRawProblem(client, problemFrom(err, socket.name));
    }
    stream.once('close', release);
    stream.on('error', () => client.destroy());
    client.once('close', () => {
      if (!stream.destroyed) stream.reset(ResetCode.cancel);
    });
    stream.once('response', (headers) => {
      const problem = connectorProblem(headers, socket.name);
      if (problem) {
        stream.reset(ResetCode.cancel);
        return sendRawProblem(client, problem);
      }
      const switched = headers[header.upgrade];
      const status = Number(headers[':status'] ?? 502);
      const out = clientResponseHeaders(headers);
      if (typeof switched !== 'string') {
        observer?.answered(status);
        client.write(responseHead(status, out, 'connection: close\r\n'));
        stream.pipe(client);
        return;
      }
      const switchHead = responseHead(101, out, `connection: Upgrade\r\nupgrade: ${switched.replace(/[\r\n]/g, '')}\r\n`);
      client.write(switchHead);
      if (head.length > 0) stream.write(head);
      const counters = joinStreams(client, stream, () => observer?.closed());
      counters.bytesUp += requestHeadBytes(req) + head.length;
      counters.bytesDown += Buffer.byteLength(switchHead, 'latin1');
      observer?.opened(counters);
    });
  }

  private requestHeaders(req: IncomingMessage, socket: SocketRecord, clientIp: string, identity: UpstreamIdentity | undefined): MuxHeaders {
    const facts: ForwardingFacts = { clientIp, host: String(req.headers.host ?? ''), proto: (req.socket as TLSSocket).encrypted ? 'https' : 'http' };
    return {
      ':method': req.method ?? 'GET',
      ':path': req.url ?? '/',
      ':authority': String(req.headers.host ?? socket.name),
      ':scheme': 'https',
      [header.socket]: socket.name,
      ...upstreamHeaders(req.headers, facts, identity),
    };
  }

  /** Counts one more open stream for a public socket's client; undefined when it holds too many. */
  private admit(socket: SocketRecord, clientIp: string): (() => void) | undefined {
    if (socket.auth.cloudauth) return () => {};
    const open = this.openByClient.get(clientIp) ?? 0;
    if (open >= this.options.maxStreamsPerClient) return undefined;
    this.openByClient.set(clientIp, open + 1);
    let released = false;
    return () => {
      if (released) return;
      released = true;
      const left = (this.openByClient.get(clientIp) ?? 1) - 1;
      if (left <= 0) this.openByClient.delete(clientIp);
      else this.openByClient.set(clientIp, left);
    };
  }

  private tooMany(clientIp: string): EdgeProblem {
    this.options.logger.info({ clientIp, limit: this.options.maxStreamsPerClient }, 'client holds too many upstream streams');
    return { status: 429, code: 'too_many_streams', detail: `this address already has ${this.options.maxStreamsPerClient} requests open on public sockets` };
  }
}

/** The size of the request head as the client sent it (request line, header lines, blank line). */
function requestHeadBytes(req: IncomingMessage): number {
  let bytes = Buffer.byteLength(`${req.method} ${req.url} HTTP/${req.httpVersion}\r\n\r\n`, 'latin1');
  for (let i = 0; i + 1 < req.rawHeaders.length; i += 2) bytes += Buffer.byteLength(`${req.rawHeaders[i]}: ${req.rawHeaders[i + 1]}\r\n`, 'latin1');
  return bytes;
}

function hasBody(req: IncomingMessage): boolean {
  return req.headers['transfer-encoding'] !== undefined || (req.headers['content-length'] !== undefined && req.headers['content-length'] !== '0');
}
