// The edge's one public port: TLS with certificates by SNI; ALPN postern/2 is a connector's
// tunnel (mTLS), `tls` sockets go to TlsSockets, `ssh` sockets to SshSockets, `postgres` sockets to
// PostgresSockets, everything else is
// HTTP/1.1 routed by Host and decided per request (WebSockets stay registered as live
// connections). EdgeServer composes the pieces: front-door.ts, http-gate.ts, upgrade.ts and
// tunnel-accept.ts.
import type http from 'node:http';
import type tls from 'node:tls';
import type { AddressInfo } from 'node:net';
import type { Logger } from 'pino';
import type { CertificateAuthority } from '../ca/index.js';
import { LEGACY_TUNNEL_ALPN, TUNNEL_ALPN } from '../tunnel/index.js';
import type { TunnelHub } from '../tunnel/index.js';
import type { NewAuditEvent, GeoLookup, CompiledCidrs, RecordingSink } from '../reporting/index.js';
import { connectionClientIp } from './access.js';
import { TlsSockets } from './tls-socket.js';
import { SshSockets } from './ssh/index.js';
import type { SshSocketOptions } from './ssh/index.js';
import { PostgresSockets } from './postgres/socket.js';
import type { LiveRegistry } from './live-registry.js';
import { HttpSocketProxy } from './http-proxy.js';
import { routeHost } from './routing.js';
import { FrontDoor } from './front-door.js';
import { DEFAULT_HTTP_LIMITS, HttpGate } from './http-gate.js';
import type { EdgeHttpLimits, HttpContext } from './http-gate.js';
import { UpgradeHandler } from './upgrade.js';
import { Authorizer } from './authorize.js';
import type { AuthorizeSettings } from './authorize.js';
import type { UpgradeOptions } from './upgrade.js';
import { TunnelAcceptor } from './tunnel-accept.js';
import type { EdgeIdentity, EdgeView } from './view.js';

export { DEFAULT_HTTP_LIMITS } from './http-gate.js';
export type { EdgeHttpLimits } from './http-gate.js';
export type { EdgeIdentity, EdgeView } from './view.js';

export interface EdgeServerOptions {
  host: string;
  port: number;
  domain: string;
  ca: CertificateAuthority;
  hub: TunnelHub;
  view: () => EdgeView;
  logger: Logger;
  /** Sign-in for cloudauth sockets; without it such sockets answer 503. */
  identity?: EdgeIdentity;
  /** Serves the control plane's host (API, dashboard), told the resolved client address; absent on an edge-only node. */
  controlHandler?: (req: http.IncomingMessage, res: http.ServerResponse, clientIp: string) => void;
  /** The authorize endpoint for other proxies (`/_postern/authz/<socket>`); needs `identity` and trusted proxies. */
  authorize?: AuthorizeSettings;
  /** Serves the control host's other HTTP upgrades (the web terminal's WebSocket). */
  controlUpgrade?: UpgradeOptions['controlUpgrade'];
  /** Where audit events go (buffered by the caller). */
  audit: (event: NewAuditEvent) => void;
  /** Long-lived connections, re-decided on every change. */
  live: LiveRegistry;
  /** Where database sessions' transcripts are recorded (managed SSH names its sink in `ssh`). */
  recordings: RecordingSink;
  geo?: GeoLookup;
  /** Peers whose X-Forwarded-For and PROXY protocol headers are believed; nobody else's. */
  trustedProxies?: CompiledCidrs;
  /** Timeouts and limits of the HTTP front; each has a default. */
  http?: Partial<EdgeHttpLimits>;
  /** Managed `ssh` sockets: the CAs, recordings and host-key pinning they need; without it such sockets are refused. */
  ssh?: Pick<SshSocketOptions, 'userCa' | 'hostKeys' | 'recordings' | 'pinHostKey' | 'limits'>;
  now?: () => Date;
}

export class EdgeServer {
  private readonly front: FrontDoor;
  private readonly http: HttpGate;
  private readonly tunnels: TunnelAcceptor;
  private readonly tlsSockets: TlsSockets;
  private readonly sshSockets: SshSockets | undefined;
  private readonly postgresSockets: PostgresSockets;

  constructor(private readonly options: EdgeServerOptions) {
    const now = options.now ?? (() => new Date());
    this.front = new FrontDoor({
      host: options.host, port: options.port, domain: options.domain, ca: options.ca, view: options.view, logger: options.logger,
      trustedProxies: options.trustedProxies, onSecureConnection: (socket) => this.onSecureConnection(socket),
      onCancelRequest: (processId, secretKey, clientIp) => this.postgresSockets.cancel(processId, secretKey, clientIp),
    });
    const connections = {
      view: options.view, hub: options.hub, audit: options.audit, live: options.live, logger: options.logger, now,
      geo: options.geo, clientIp: (socket: tls.TLSSocket) => connectionClientIp(socket, this.front.clientIp(socket), now(), options.logger),
    };
    this.tlsSockets = new TlsSockets(connections);
    this.sshSockets = options.ssh && new SshSockets({ ...options.ssh, ...connections });
    this.postgresSockets = new PostgresSockets({ ...connections, recordings: options.recordings });
    this.tunnels = new TunnelAcceptor({ hub: options.hub, view: options.view, logger: options.logger });
    const limits = { ...DEFAULT_HTTP_LIMITS, ...options.http };
    const clientIp = (req: http.IncomingMessage) => this.front.httpClientIp(req);
    const context: HttpContext = {
      domain: options.domain, view: options.view, logger: options.logger, audit: options.audit, now, clientIp,
      proxy: new HttpSocketProxy({ hub: options.hub, logger: options.logger, clientIp, bodyIdleTimeoutMs: limits.bodyIdleTimeoutMs, maxStreamsPerClient: limits.maxStreamsPerClient }),
      identity: options.identity, geo: options.geo,
    };
    const authorize = options.authorize && options.identity && new Authorizer({
      ...context, ...options.authorize, identity: options.identity, trustedProxies: options.trustedProxies, peerIp: (req) => this.front.clientIp(req.socket),
    });
    this.http = new HttpGate({ ...context, limits, controlHandler: options.controlHandler, ...(authorize ? { authorize } : {}) });
    const upgrades = new UpgradeHandler({
      ...context,
      live: options.live,
      tunnelUpgrade: (req, client, head) => this.tunnels.upgrade(req, client, head),
      legacyTunnelUpgrade: (client) => this.tunnels.refuseLegacyUpgrade(client),
      ...(options.controlUpgrade ? { controlUpgrade: options.controlUpgrade } : {}),
    });
    this.http.server.on('upgrade', (req, socket, head) => upgrades.handle(req, socket, head));
  }

  start(): Promise<AddressInfo> {
    return this.front.start();
  }

  /** Where a finished handshake goes: a connector's tunnel, a `tls` or `ssh` socket, or HTTP. */
  private onSecureConnection(socket: tls.TLSSocket): void {
    socket.on('error', (err) => this.options.logger.debug({ err: err.message }, 'client connection error'));
    if (socket.alpnProtocol === TUNNEL_ALPN) return this.tunnels.accept(socket, 'tls');
    if (socket.alpnProtocol === LEGACY_TUNNEL_ALPN) return this.tunnels.refuseLegacy(socket);
    const servername = (socket as tls.TLSSocket & { servername?: string | false }).servername;
    const route = routeHost(servername || undefined, this.options.domain);
    if (route.kind === 'socket') {
      const record = this.options.view().socket(route.name);
      if (record?.type === 'tls') return this.tlsSockets.accept(socket, record);
      if (record?.type === 'ssh') return this.sshSockets ? this.sshSockets.accept(socket, record) : void socket.destroy();
      if (record?.type === 'postgres') return this.postgresSockets.accept(socket, record);
    }
    this.http.server.emit('connection', socket);
  }

  /** Stops accepting, asks connectors to move away, then closes what is left after `graceMs`. */
  async close(graceMs = 1_000): Promise<void> {
    const closed = this.front.stopAccepting();
    await this.options.hub.close(graceMs);
    this.http.server.closeIdleConnections();
    const timer = setTimeout(() => this.front.destroyConnections(), graceMs);
    timer.unref();
    await closed;
    clearTimeout(timer);
  }
}
