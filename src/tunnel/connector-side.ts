// Connector end of one tunnel connection: answers the streams the edge opens on the transport
// it dialed, says hello on the control stream, and hands every other stream to the
// connector's upstream handler.
import { EventEmitter } from 'node:events';
import type { Duplex } from 'node:stream';
import type { Logger } from 'pino';
import { CONTROL_PATH, MAX_CONTROL_LINE, MAX_TUNNEL_STREAMS, edgeMessage } from './protocol.js';
import { MuxSession } from './mux.js';
import type { MuxStream } from './mux.js';
import { ResetCode } from './frame.js';
import type { MuxHeaders } from './frame.js';
import type { ConnectorMessage, EdgeMessage } from './protocol.js';
import { readMessages, writeMessage } from './ndjson.js';
import { systemClock } from '../clock.js';
import type { Clock } from '../clock.js';
import type { SocketType } from '../store/index.js';

export type StreamHandler = (stream: MuxStream, headers: MuxHeaders) => void;

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
  private session?: MuxSession;
  private control?: MuxStream;
  private activeStreams = 0;
  private closed = false;

  constructor(private readonly transport: Duplex, private readonly options: TunnelSessionOptions) {
    super();
  }

  start(): void {
    const { logger } = this.options;
    this.session = new MuxSession(this.transport, {
      role: 'connector',
      logger,
      maxStreams: MAX_TUNNEL_STREAMS,
      onStream: (stream, headers) => {
        stream.on('error', (err) => logger.debug({ err }, 'tunnel stream error'));
        if (headers[':path'] === CONTROL_PATH) return this.onControl(stream);
        this.activeStreams++;
        stream.once('close', () => {
          this.activeStreams--;
          if (this.activeStreams === 0) this.emit('idle');
        });
        this.options.onStream(stream, headers);
      },
    });
    this.session.on('close', () => this.finish());
  }

  private onControl(stream: MuxStream): void {
    if (this.control) return stream.reset(ResetCode.refused);
    this.control = stream;
    stream.respond({ ':status': '200' });
    // The edge ending its side (it is going away) is answered in kind, so the stream settles.
    stream.once('end', () => stream.end());
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
    this.session?.destroy();
    this.transport.destroy();
    this.finish();
  }

  private finish(): void {
    if (this.closed) return;
    this.closed = true;
    this.emit('close');
  }
}
