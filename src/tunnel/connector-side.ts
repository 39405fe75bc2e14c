// Connector end of one tunnel connection: serves HTTP/2 on the transport it dialed, says hello
// on the control stream, and hands every other stream to the connector's upstream handler.
import http2 from 'node:http2';
import { EventEmitter } from 'node:events';
import type { Duplex } from 'node:stream';
import type { IncomingHttpHeaders, ServerHttp2Session, ServerHttp2Stream } from 'node:http2';
import type { Logger } from 'pino';
import { CONTROL_PATH, MAX_CONTROL_LINE, SESSION_WINDOW, edgeMessage, h2Settings } from './protocol.js';
import type { ConnectorMessage, EdgeMessage } from './protocol.js';
import { readMessages, writeMessage } from './ndjson.js';
import { systemClock } from '../clock.js';
import type { Clock } from '../clock.js';
import type { SocketType } from '../store/socket-types.js';

export type StreamHandler = (stream: ServerHttp2Stream, headers: IncomingHttpHeaders) => void;

export interface Hello {
  connectorId: string;
  version: string;
  sockets: { name: string; type: SocketType }[];
}

export interface TunnelSessionOptions {
  hello: Hello;
  onStream: StreamHandler;
  logger: Logger;
  /** Times drain()'s grace period. */
  clock?: Clock;
}

/**
 * Events: `welcome` (EdgeMessage welcome), `drain-requested` (the edge is going away),
 * `close` (the connection is gone, for whatever reason).
 */
export class ConnectorTunnel extends EventEmitter {
  private session?: ServerHttp2Session;
  private control?: ServerHttp2Stream;
  private activeStreams = 0;
  private closed = false;

  constructor(private readonly transport: Duplex, private readonly options: TunnelSessionOptions) {
    super();
  }

  start(): void {
    const { logger } = this.options;
    const server = http2.createServer({ settings: h2Settings, maxSessionMemory: 64 });
    server.on('session', (session: ServerHttp2Session) => {
      this.session = session;
      session.setLocalWindowSize(SESSION_WINDOW);
      session.on('error', (err) => logger.debug({ err }, 'tunnel session error'));
      session.on('close', () => this.finish());
    });
    server.on('stream', (stream, headers) => {
      stream.on('error', (err) => logger.debug({ err }, 'tunnel stream error'));
      if (headers[':path'] === CONTROL_PATH) return this.onControl(stream);
      this.activeStreams++;
      stream.once('close', () => {
        this.activeStreams--;
        if (this.activeStreams === 0) this.emit('idle');
      });
      this.options.onStream(stream, headers);
    });
    this.transport.on('close', () => this.finish());
    this.transport.on('error', (err) => logger.debug({ err }, 'tunnel transport error'));
    server.emit('connection', this.transport);
  }

  private onControl(stream: ServerHttp2Stream): void {
    if (this.control) {
      stream.close(http2.constants.NGHTTP2_REFUSED_STREAM);
      return;
    }
    this.control = stream;
    stream.respond({ ':status': 200 });
    writeMessage(stream, { type: 'hello', ...this.options.hello } satisfies ConnectorMessage);
    readMessages(stream, edgeMessage, MAX_CONTROL_LINE, (message: EdgeMessage) => {
      if (message.type === 'welcome') this.emit('welcome', message);
      else if (message.type === 'drain') this.emit('drain-requested');
    }, (err) => {
      this.options.logger.warn({ err: err.message }, 'bad control message from edge; closing tunnel');
      this.destroy();
    });
  }

  get streams(): number {
    return this.activeStreams;
  }

  /** Stops taking new streams, lets running ones finish (up to `graceMs`), then closes. */
  async drain(graceMs: number): Promise<void> {
    if (this.closed) return;
    if (this.control) writeMessage(this.control, { type: 'drain' } satisfies ConnectorMessage);
    if (this.activeStreams > 0) {
      const clock = this.options.clock ?? systemClock;
      await new Promise<void>((resolve) => {
        const timer = clock.setTimeout(resolve, graceMs);
        this.once('idle', () => (clock.clearTimeout(timer), resolve()));
        this.once('close', () => (clock.clearTimeout(timer), resolve()));
      });
    }
    this.destroy();
  }

  destroy(): void {
    if (this.session && !this.session.destroyed) this.session.destroy();
    this.transport.destroy();
    this.finish();
  }

  private finish(): void {
    if (this.closed) return;
    this.closed = true;
    this.emit('close');
  }
}
