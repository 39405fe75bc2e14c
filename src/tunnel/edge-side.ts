// Edge end of the tunnel: runs a postern/2 session on each connector transport, learns which
// sockets it serves from the control stream (as far as the authorizer allows), and picks a
// connection per user stream.
import { EventEmitter } from 'node:events';
import type { Duplex } from 'node:stream';
import type { Logger } from 'pino';
import { CONTROL_PATH, MAX_CONTROL_LINE, connectorMessage } from './protocol.js';
import { MuxSession } from './mux.js';
import type { MuxStream } from './mux.js';
import type { MuxHeaders } from './frame.js';
import type { ConnectorMessage, EdgeMessage } from './protocol.js';
import { readMessages, writeMessage } from './ndjson.js';
import { systemClock, unrefTimer } from '../clock.js';
import type { Clock } from '../clock.js';
import { PosternError } from '../errors.js';

export interface TunnelPeer {
  readonly connectorId: string;
  readonly connectorName: string;
  readonly remoteAddress: string;
  readonly transport: 'tls' | 'websocket';
}

export interface TunnelInfo extends TunnelPeer {
  readonly id: string;
  readonly sockets: readonly string[];
  readonly activeStreams: number;
  readonly draining: boolean;
  readonly connectedAt: string;
}

export interface SocketRefusal {
  readonly name: string;
  readonly reason: string;
  /** A stable kebab-case code for logs and audit (e.g. `not-bound`). */
  readonly code?: string;
}

export interface SocketAuthorizer {
  (connectorId: string, sockets: readonly { name: string; type: string }[]): { accepted: string[]; rejected: SocketRefusal[] };
}

export interface TunnelHubOptions {
  edgeId: string;
  logger: Logger;
  authorizeSockets: SocketAuthorizer;
  /** A connection that has not said hello by then is closed. */
  helloTimeoutMs?: number;
  pingIntervalMs?: number;
  /** A ping the connector has not answered by then closes the tunnel (default 30 s). */
  pingTimeoutMs?: number;
  /** Times hellos, pings and close(), and stamps connectedAt. */
  clock?: Clock;
}

class EdgeTunnel {
  sockets: readonly string[] = [];
  announced: readonly { name: string; type: string }[] = [];
  /** Refused announcements by name (a refusal is reported once, when it first happens). */
  refused = new Map<string, string>();
  /** Open user streams with the socket each serves (reset when the socket is no longer served here). */
  readonly streams = new Map<MuxStream, string>();
  draining = false;
  readonly connectedAt: string;

  constructor(
    readonly id: string,
    readonly peer: TunnelPeer,
    readonly session: MuxSession,
    readonly control: MuxStream,
    now: Date,
  ) {
    this.connectedAt = now.toISOString();
  }

  /** User streams open on this connection (the control stream is not one). */
  get activeStreams(): number {
    return this.streams.size;
  }

  info(): TunnelInfo {
    return { ...this.peer, id: this.id, sockets: this.sockets, activeStreams: this.activeStreams, draining: this.draining, connectedAt: this.connectedAt };
  }
}

/**
 * Events: `change` (tunnels or their sockets changed), `refused` (TunnelInfo, SocketRefusal):
 * an announcement the authorizer newly refused, on hello or after reauthorize().
 */
export class TunnelHub extends EventEmitter {
  private readonly tunnels = new Map<string, EdgeTunnel>();
  private readonly bySocket = new Map<string, EdgeTunnel[]>();
  private nextId = 1;
  private roundRobin = 0;
  private readonly clock: Clock;

  constructor(private readonly options: TunnelHubOptions) {
    super();
    this.clock = options.clock ?? systemClock;
  }

  get edgeId(): string {
    return this.options.edgeId;
  }

  /** Takes ownership of an authenticated transport; the connector answers streams the edge opens on it. */
  attach(transport: Duplex, peer: TunnelPeer): void {
    const { logger } = this.options;
    const id = `${this.options.edgeId}/${this.nextId++}`;
    const log = logger.child({ tunnel: id, connector: peer.connectorId });
    // The connector opens no streams of its own: any it tries is refused.
    const session = new MuxSession(transport, { role: 'edge', logger: log });
    const control = session.open({ ':path': CONTROL_PATH });
    const tunnel = new EdgeTunnel(id, peer, session, control, new Date(this.clock.now()));
    this.tunnels.set(id, tunnel);

    const helloTimer = this.clock.setTimeout(() => {
      log.warn('connector sent no hello in time; closing tunnel');
      session.destroy();
    }, this.options.helloTimeoutMs ?? 10_000);
    // A connector that vanished without a FIN (NAT timeout, power loss) answers no ping: without a
    // deadline its tunnel would stay "online" until TCP gives up, and keep being picked for streams.
    let pingDeadline: unknown;
    const pingTimer = this.clock.setInterval(() => {
      if (session.destroyed || pingDeadline !== undefined) return;
      pingDeadline = this.clock.setTimeout(() => {
        log.warn({ timeoutMs: this.options.pingTimeoutMs ?? 30_000 }, 'tunnel ping unanswered; closing');
        session.destroy();
      }, this.options.pingTimeoutMs ?? 30_000);
      unrefTimer(pingDeadline);
      session.ping(() => {
        this.clock.clearTimeout(pingDeadline);
        pingDeadline = undefined;
      });
    }, this.options.pingIntervalMs ?? 15_000);
    unrefTimer(pingTimer);

    control.on('error', (err) => log.debug({ err }, 'control stream error'));
    readMessages(control, connectorMessage, MAX_CONTROL_LINE, (message) => {
      if (message.type === 'hello') this.clock.clearTimeout(helloTimer);
      this.onControlMessage(tunnel, message);
    }, (err) => {
      log.warn({ err: err.message }, 'bad control message; closing tunnel');
      session.destroy();
    });
    control.on('close', () => session.close());

    session.on('close', () => {
      this.clock.clearTimeout(helloTimer);
      this.clock.clearInterval(pingTimer);
      this.clock.clearTimeout(pingDeadline);
      this.detach(tunnel);
      log.info('tunnel closed');
    });
  }

  private onControlMessage(tunnel: EdgeTunnel, message: ConnectorMessage): void {
    if (message.type === 'drain') {
      tunnel.draining = true;
      this.options.logger.info({ tunnel: tunnel.id }, 'connector is draining this tunnel');
      this.emit('change');
      return;
    }
    if (message.connectorId !== tunnel.peer.connectorId) {
      this.options.logger.warn({ tunnel: tunnel.id }, 'hello names another connector than its certificate; closing');
      tunnel.session.destroy();
      return;
    }
    tunnel.announced = message.sockets;
    const { accepted, rejected } = this.index(tunnel);
    this.welcome(tunnel, accepted, rejected);
    this.options.logger.info({ tunnel: tunnel.id, connector: tunnel.peer.connectorName, sockets: accepted, rejected }, 'tunnel ready');
    this.emit('change');
  }

  /** Tells the connector what it serves now; sent on hello and again whenever that changes. */
  private welcome(tunnel: EdgeTunnel, accepted: string[], rejected: readonly SocketRefusal[]): void {
    const message: EdgeMessage = { type: 'welcome', edgeId: this.options.edgeId, accepted, rejected: rejected.map(({ name, reason }) => ({ name, reason })) };
    writeMessage(tunnel.control, message);
  }

  private index(tunnel: EdgeTunnel): ReturnType<SocketAuthorizer> {
    const decision = this.options.authorizeSockets(tunnel.peer.connectorId, tunnel.announced);
    this.unindex(tunnel);
    tunnel.sockets = decision.accepted;
    for (const name of decision.accepted) this.bySocket.set(name, [...(this.bySocket.get(name) ?? []), tunnel]);
    // A socket this tunnel no longer serves gets no bytes through it, not even on streams already open.
    for (const [stream, name] of tunnel.streams) if (!decision.accepted.includes(name)) stream.destroy();
    const refused = new Map(decision.rejected.map((r) => [r.name, r.reason]));
    for (const refusal of decision.rejected) {
      if (tunnel.refused.get(refusal.name) === refusal.reason) continue;
      this.options.logger.warn({ tunnel: tunnel.id, connector: tunnel.peer.connectorId, socket: refusal.name, code: refusal.code, reason: refusal.reason }, 'refused a socket the connector announced');
      this.emit('refused', tunnel.info(), refusal);
    }
    tunnel.refused = refused;
    return decision;
  }

  /** Re-decides which announced sockets each tunnel may serve (sockets created, changed, deleted or bound elsewhere). */
  reauthorize(): void {
    let changed = false;
    for (const tunnel of this.tunnels.values()) {
      if (tunnel.announced.length === 0) continue;
      const before = [tunnel.sockets.join(','), [...tunnel.refused.keys()].join(',')].join('|');
      const { accepted, rejected } = this.index(tunnel);
      if ([accepted.join(','), rejected.map((r) => r.name).join(',')].join('|') === before) continue;
      changed = true;
      this.welcome(tunnel, accepted, rejected);
    }
    if (changed) this.emit('change');
  }

  private detach(tunnel: EdgeTunnel): void {
    this.tunnels.delete(tunnel.id);
    this.unindex(tunnel);
    this.emit('change');
  }

  private unindex(tunnel: EdgeTunnel): void {
    for (const name of tunnel.sockets) {
      const rest = (this.bySocket.get(name) ?? []).filter((t) => t !== tunnel);
      if (rest.length > 0) this.bySocket.set(name, rest);
      else this.bySocket.delete(name);
    }
  }

  /** The least busy live, non-draining connection for the socket; throws `connector_offline`. */
  openStream(socketName: string, headers: MuxHeaders, options: { endStream?: boolean } = {}): MuxStream {
    const tunnel = this.pick(socketName);
    if (!tunnel) throw new PosternError('connector_offline', `no connector is online for socket "${socketName}"`, { retryable: true });
    const stream = tunnel.session.open(headers, options);
    tunnel.streams.set(stream, socketName);
    stream.once('close', () => tunnel.streams.delete(stream));
    return stream;
  }

  private pick(socketName: string): EdgeTunnel | undefined {
    const candidates = (this.bySocket.get(socketName) ?? []).filter((t) => !t.draining && !t.session.closing);
    if (candidates.length === 0) return undefined;
    const least = Math.min(...candidates.map((t) => t.activeStreams));
    const tied = candidates.filter((t) => t.activeStreams === least);
    return tied[this.roundRobin++ % tied.length];
  }

  isOnline(socketName: string): boolean {
    return this.pick(socketName) !== undefined;
  }

  list(): TunnelInfo[] {
    return [...this.tunnels.values()].map((t) => t.info());
  }

  /** Closes every tunnel of a connector (revoked or deleted). */
  disconnectConnector(connectorId: string): void {
    for (const tunnel of this.tunnels.values()) if (tunnel.peer.connectorId === connectorId) tunnel.session.destroy();
  }

  /** Asks every connector to move away (edge shutting down), then closes within `graceMs`. */
  async close(graceMs = 2_000): Promise<void> {
    const all = [...this.tunnels.values()];
    for (const tunnel of all) {
      writeMessage(tunnel.control, { type: 'drain' } satisfies EdgeMessage);
      tunnel.control.end();
    }
    await Promise.all(all.map((tunnel) => new Promise<void>((resolve) => {
      if (tunnel.session.destroyed) return resolve();
      const timer = this.clock.setTimeout(() => tunnel.session.destroy(), graceMs);
      tunnel.session.once('close', () => (this.clock.clearTimeout(timer), resolve()));
      tunnel.session.close();
    })));
  }
}
