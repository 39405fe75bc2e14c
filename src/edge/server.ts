// The edge's one public port: TLS with certificates by SNI; ALPN postern/1 is a connector's
// tunnel (mTLS), `tls` sockets are piped as TCP, everything else is HTTP/1.1 routed by Host.
import http from 'node:http';
import net from 'node:net';
import tls from 'node:tls';
import type { AddressInfo } from 'node:net';
import type { Duplex } from 'node:stream';
import type { Logger } from 'pino';
import { WebSocketServer, createWebSocketStream } from 'ws';
import type { CertificateAuthority } from '../ca/authority.js';
import type { TunnelHub, TunnelPeer } from '../tunnel/edge-side.js';
import { TUNNEL_ALPN, TUNNEL_WEBSOCKET_PATH, header } from '../tunnel/protocol.js';
import type { ConnectorRecord, SocketRecord, UserRecord } from '../store/types.js';
import { SESSION_URI_PREFIX, isAllowed } from '../identity/claims.js';
import { MAX_HELLO_BYTES, peekClientHello } from './client-hello.js';
import { HttpSocketProxy, normalizeIp } from './http-proxy.js';
import { routeHost } from './routing.js';
import { sendProblem, sendRawProblem } from './error-page.js';
import { SniContexts } from './tls-context.js';
import { joinStreams } from './pipe.js';
import { isPosternError } from '../errors.js';
import type { Identity, IdentityGate } from './identity-gate.js';
import type { UpstreamIdentity } from './forwarding.js';

/** What the edge reads per request: an in-memory view, never the database. */
export interface EdgeView {
  socket(name: string): SocketRecord | undefined;
  connector(id: string): ConnectorRecord | undefined;
  userByEmail(email: string): UserRecord | undefined;
  /** Whether a sign-in session is still valid (not revoked, not expired). */
  sessionLive(id: string): boolean;
}

export interface EdgeIdentity {
  gate: IdentityGate;
  /** The signed assertion for this user and socket (cached per session and socket). */
  assertion: (identity: Identity, socket: SocketRecord) => Promise<string>;
}

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
  /** Serves the control plane's host (API, dashboard); absent on an edge-only node. */
  controlHandler?: (req: http.IncomingMessage, res: http.ServerResponse) => void;
}

export class EdgeServer {
  /** The public port: reads the ClientHello's SNI, then hands the bytes to one of the TLS servers. */
  private readonly front: net.Server;
  private readonly tlsServer: tls.Server;
  /** For `tls` sockets: a client certificate from Postern's CA is required in the handshake. */
  private readonly certTlsServer: tls.Server;
  private readonly httpServer: http.Server;
  private readonly proxy: HttpSocketProxy;
  private readonly sni: SniContexts;
  private readonly tunnelUpgrades = new WebSocketServer({ noServer: true, perMessageDeflate: false, maxPayload: 16 * 1024 * 1024 });
  private readonly connections = new Set<Duplex>();

  constructor(private readonly options: EdgeServerOptions) {
    this.sni = new SniContexts(options.ca, options.domain);
    this.proxy = new HttpSocketProxy({ hub: options.hub, logger: options.logger });
    this.httpServer = http.createServer({ requestTimeout: 0, headersTimeout: 30_000, keepAliveTimeout: 65_000 });
    this.httpServer.on('request', (req, res) => this.onRequest(req, res));
    this.httpServer.on('upgrade', (req, socket, head) => this.onUpgrade(req, socket, head));
    this.httpServer.on('clientError', (err, socket) => {
      if (socket.writable) socket.end('HTTP/1.1 400 Bad Request\r\nconnection: close\r\n\r\n');
      options.logger.debug({ err: err.message }, 'malformed HTTP from client');
    });
    this.tlsServer = tls.createServer({
      SNICallback: this.sni.sniCallback(),
      ALPNProtocols: [TUNNEL_ALPN, 'http/1.1'],
      requestCert: true,
      rejectUnauthorized: false,
      ca: options.ca.certificatePem,
      minVersion: 'TLSv1.2',
      allowHalfOpen: true,
      // Small request/response pairs must not wait for Nagle's algorithm (40 ms with delayed ACKs).
      noDelay: true,
    });
    this.certTlsServer = tls.createServer({
      SNICallback: this.sni.sniCallback(),
      requestCert: true,
      rejectUnauthorized: true,
      ca: options.ca.certificatePem,
      minVersion: 'TLSv1.3',
      allowHalfOpen: true,
    });
    for (const server of [this.tlsServer, this.certTlsServer]) {
      server.on('secureConnection', (socket) => this.onSecureConnection(socket));
      server.on('tlsClientError', (err, socket) => options.logger.info({ err: err.message, remoteAddress: socket.remoteAddress }, 'TLS handshake refused'));
    }
    this.front = net.createServer({ allowHalfOpen: true, noDelay: true }, (socket) => this.route(socket));
  }

  /** Peeks the ClientHello (bounded in size and time) and picks the TLS server for its SNI. */
  private route(socket: net.Socket): void {
    this.connections.add(socket);
    socket.once('close', () => this.connections.delete(socket));
    socket.on('error', () => socket.destroy());
    let buffered = Buffer.alloc(0);
    const timer = setTimeout(() => socket.destroy(), 10_000);
    const onData = (chunk: Buffer) => {
      buffered = Buffer.concat([buffered, chunk]);
      const peek = peekClientHello(buffered);
      if (peek.kind === 'incomplete' && buffered.length < MAX_HELLO_BYTES) return;
      clearTimeout(timer);
      socket.off('data', onData);
      socket.pause();
      socket.unshift(buffered);
      const server = peek.kind === 'hello' && this.requiresClientCertificate(peek.info.serverName) ? this.certTlsServer : this.tlsServer;
      server.emit('connection', socket);
    };
    socket.on('data', onData);
  }

  private requiresClientCertificate(serverName: string | undefined): boolean {
    const route = routeHost(serverName, this.options.domain);
    if (route.kind !== 'socket') return false;
    const record = this.options.view().socket(route.name);
    return record?.type === 'tls';
  }

  async start(): Promise<AddressInfo> {
    // The default certificate (clients that send no SNI, e.g. an IP address) is the control host's.
    this.tlsServer.setSecureContext({ ...(await this.defaultCredentials()) });
    this.certTlsServer.setSecureContext({ ...(await this.defaultCredentials()) });
    await new Promise<void>((resolve, reject) => {
      this.front.once('error', reject);
      this.front.listen(this.options.port, this.options.host, () => {
        this.front.off('error', reject);
        resolve();
      });
    });
    return this.front.address() as AddressInfo;
  }

  private async defaultCredentials(): Promise<tls.SecureContextOptions> {
    const credentials = await this.options.ca.serverCredentials(this.options.domain);
    return { key: credentials.keyPem, cert: `${credentials.certPem.trim()}\n${this.options.ca.certificatePem.trim()}\n`, ca: this.options.ca.certificatePem };
  }

  private onSecureConnection(socket: tls.TLSSocket): void {
    socket.on('error', (err) => this.options.logger.debug({ err: err.message }, 'client connection error'));
    if (socket.alpnProtocol === TUNNEL_ALPN) return this.acceptTunnel(socket, 'tls');
    const servername = (socket as tls.TLSSocket & { servername?: string | false }).servername;
    const route = routeHost(servername || undefined, this.options.domain);
    if (route.kind === 'socket') {
      const record = this.options.view().socket(route.name);
      if (record?.type === 'tls') {
        const refusal = this.certificateRefusal(socket, record);
        if (!refusal) return this.pipeTlsSocket(socket, record, this.certificateEmail(socket));
        this.options.logger.info({ socket: record.name, remoteAddress: socket.remoteAddress, reason: refusal }, 'tls socket refused');
        return void socket.destroy();
      }
    }
    this.httpServer.emit('connection', socket);
  }

  /** Why a client certificate (already verified against our CA) may not use this socket, if it may not. */
  private certificateRefusal(socket: tls.TLSSocket, record: SocketRecord): string | undefined {
    const email = this.certificateEmail(socket);
    if (!socket.authorized || !email) return 'no user certificate';
    const view = this.options.view();
    const user = view.userByEmail(email);
    if (!user || user.disabledAt) return `${email} is not an active user`;
    const session = new RegExp(`URI:${SESSION_URI_PREFIX}([A-Za-z0-9_-]+)`).exec(socket.getPeerCertificate().subjectaltname ?? '')?.[1];
    if (session !== undefined && !view.sessionLive(session)) return `the sign-in of ${email} this certificate was issued under has ended`;
    const { allowedEmailDomains, allowedEmailAddresses } = record.auth;
    if (allowedEmailDomains.length === 0 && allowedEmailAddresses.length === 0) return undefined;
    const verdict = isAllowed(user, { emailDomains: allowedEmailDomains, emailAddresses: allowedEmailAddresses });
    return verdict.allowed ? undefined : verdict.reason;
  }

  private certificateEmail(socket: tls.TLSSocket): string | undefined {
    return /(?:^|, )email:([^,\s]+)/.exec(socket.getPeerCertificate().subjectaltname ?? '')?.[1]?.toLowerCase();
  }

  /** A connector's tunnel: the certificate must chain to our CA and name a live connector. */
  private acceptTunnel(socket: tls.TLSSocket, transport: TunnelPeer['transport'], duplex: Duplex = socket): void {
    const peer = this.authenticateConnector(socket);
    if (!peer) {
      duplex.destroy();
      return;
    }
    socket.setNoDelay(true);
    this.options.hub.attach(duplex, { ...peer, transport });
  }

  private authenticateConnector(socket: tls.TLSSocket): Omit<TunnelPeer, 'transport'> | undefined {
    const { logger } = this.options;
    const remoteAddress = normalizeIp(socket.remoteAddress ?? '');
    if (!socket.authorized) {
      logger.warn({ remoteAddress, reason: socket.authorizationError }, 'tunnel refused: no valid connector certificate');
      return undefined;
    }
    const connectorId = socket.getPeerCertificate().subject?.CN;
    const record = typeof connectorId === 'string' ? this.options.view().connector(connectorId) : undefined;
    if (!record || record.revokedAt) {
      logger.warn({ remoteAddress, connectorId }, 'tunnel refused: unknown or revoked connector');
      return undefined;
    }
    return { connectorId: record.id, connectorName: record.name, remoteAddress };
  }

  private pipeTlsSocket(socket: tls.TLSSocket, record: SocketRecord, user?: string): void {
    let stream;
    try {
      stream = this.options.hub.openStream(record.name, { [header.socket]: record.name, [header.kind]: 'tcp', [header.clientIp]: normalizeIp(socket.remoteAddress ?? '') });
    } catch (err) {
      this.options.logger.info({ socket: record.name, err: isPosternError(err) ? err.code : err }, 'tls socket refused');
      socket.destroy();
      return;
    }
    socket.pause();
    socket.setNoDelay(true);
    stream.once('response', (headers) => {
      if (headers[header.error]) {
        stream.close();
        socket.destroy();
      }
    });
    const started = Date.now();
    const clientIp = normalizeIp(socket.remoteAddress ?? '');
    this.options.logger.info({ event: 'connection.open', socket: record.name, user, clientIp }, 'tls connection opened');
    joinStreams(socket, stream, ({ bytesUp, bytesDown }) => {
      const reason = stream.rstCode !== undefined && stream.rstCode !== 0 ? `reset (${stream.rstCode})` : 'closed';
      this.options.logger.info({ event: 'connection.close', socket: record.name, user, clientIp, bytesUp, bytesDown, durationMs: Date.now() - started, reason }, 'tls connection closed');
    });
  }

  private onRequest(req: http.IncomingMessage, res: http.ServerResponse): void {
    const route = routeHost(req.headers.host, this.options.domain);
    if (route.kind === 'control') {
      if (this.options.controlHandler) return this.options.controlHandler(req, res);
      return sendProblem(req, res, { status: 404, code: 'not_found', detail: 'this node is an edge; the control plane is served elsewhere' });
    }
    if (route.kind === 'unknown') return sendProblem(req, res, { status: 404, code: 'socket_not_found', detail: `${route.host} is not served here` });
    const record = this.options.view().socket(route.name);
    if (!record || record.type === 'tls') return sendProblem(req, res, { status: 404, code: 'socket_not_found', detail: `there is no HTTP socket named "${route.name}"` });
    if (!record.auth.cloudauth) return this.proxy.handleRequest(req, res, record);
    this.gated(req, res, record).catch((err: unknown) => {
      this.options.logger.error({ err, socket: record.name }, 'identity check failed');
      sendProblem(req, res, { status: 500, code: 'internal', detail: 'the identity check failed (see the edge log)' });
    });
  }

  private async gated(req: http.IncomingMessage, res: http.ServerResponse, record: SocketRecord): Promise<void> {
    const identity = this.options.identity;
    if (!identity) return sendProblem(req, res, { status: 503, code: 'internal', detail: 'sign-in is not configured on this edge' });
    const result = await identity.gate.check(req, res, record);
    if (result.kind === 'answered') return;
    this.proxy.handleRequest(req, res, record, await this.upstreamIdentity(result.identity, record));
  }

  private async upstreamIdentity(identity: Identity, record: SocketRecord): Promise<UpstreamIdentity> {
    const assertion = await this.options.identity!.assertion(identity, record);
    return { userId: identity.user.id, email: identity.user.email, groups: identity.user.groups, assertion };
  }

  private onUpgrade(req: http.IncomingMessage, client: Duplex, head: Buffer): void {
    client.on('error', () => client.destroy());
    const route = routeHost(req.headers.host, this.options.domain);
    if (route.kind === 'control') {
      if (req.url?.split('?')[0] === TUNNEL_WEBSOCKET_PATH) return this.upgradeTunnel(req, client, head);
      return sendRawProblem(client, { status: 404, code: 'not_found', detail: 'no upgrade here' });
    }
    const record = route.kind === 'socket' ? this.options.view().socket(route.name) : undefined;
    if (!record || record.type === 'tls') return sendRawProblem(client, { status: 404, code: 'socket_not_found', detail: 'no such HTTP socket' });
    if (!record.auth.cloudauth) return this.proxy.handleUpgrade(req, client, head, record);
    const identity = this.options.identity;
    if (!identity) return sendRawProblem(client, { status: 503, code: 'internal', detail: 'sign-in is not configured on this edge' });
    const who = identity.gate.authorize(req, record);
    if ('status' in who) return sendRawProblem(client, who);
    this.upstreamIdentity(who, record).then(
      (upstream) => this.proxy.handleUpgrade(req, client, head, record, upstream),
      () => client.destroy(),
    );
  }

  private upgradeTunnel(req: http.IncomingMessage, client: Duplex, head: Buffer): void {
    const socket = req.socket as tls.TLSSocket;
    if (!this.authenticateConnector(socket)) return sendRawProblem(client, { status: 401, code: 'certificate_invalid', detail: 'a connector certificate is required' });
    this.tunnelUpgrades.handleUpgrade(req, client, head, (ws) => {
      this.acceptTunnel(socket, 'websocket', createWebSocketStream(ws));
    });
  }

  /** Stops accepting, asks connectors to move away, then closes what is left after `graceMs`. */
  async close(graceMs = 1_000): Promise<void> {
    const closed = new Promise<void>((resolve) => this.front.close(() => resolve()));
    await this.options.hub.close(graceMs);
    this.httpServer.closeIdleConnections();
    const timer = setTimeout(() => {
      for (const socket of this.connections) socket.destroy();
    }, graceMs);
    timer.unref();
    await closed;
    clearTimeout(timer);
  }
}
