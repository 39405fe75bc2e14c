// The edge's one public port: TLS with certificates by SNI; ALPN postern/1 is a connector's
// tunnel (mTLS), `tls` sockets go to TlsSockets, everything else is HTTP/1.1 routed by Host and
// decided per request (WebSockets stay registered as live connections).
import http from 'node:http';
import net from 'node:net';
import tls from 'node:tls';
import type { AddressInfo } from 'node:net';
import type { Duplex } from 'node:stream';
import type { Logger } from 'pino';
import { WebSocketServer, createWebSocketStream } from 'ws';
import type { CertificateAuthority } from '../ca/authority.js';
import type { TunnelHub, TunnelPeer } from '../tunnel/edge-side.js';
import { TUNNEL_ALPN, TUNNEL_WEBSOCKET_PATH } from '../tunnel/protocol.js';
import type { ConnectorRecord, SocketRecord, UserRecord } from '../store/types.js';
import { evaluate, requestContext } from '../policy/index.js';
import type { PolicySet } from '../policy/index.js';
import type { NewAuditEvent } from '../reporting/events.js';
import type { GeoLookup } from '../reporting/geo.js';
import type { CompiledCidrs } from '../reporting/cidr.js';
import { clientAddress, parseProxyHeader } from '../reporting/trusted-proxies.js';
import { decidingRule, denialDetail, newConnectionId, requestPath } from './access.js';
import { TlsSockets } from './tls-socket.js';
import { SshSockets } from './ssh/index.js';
import type { SshSocketOptions } from './ssh/index.js';
import type { LiveRegistry, Verdict } from './live-registry.js';
import { MAX_HELLO_BYTES, peekClientHello } from './client-hello.js';
import { HttpSocketProxy, normalizeIp } from './http-proxy.js';
import { routeHost } from './routing.js';
import { sendProblem, sendRawProblem } from './error-page.js';
import type { EdgeProblem } from './error-page.js';
import { canonicalTarget } from '../policy/index.js';
import { SIGN_OUT_PATH, isSignOutPath } from './sign-out.js';
import type { CanonicalTarget } from '../policy/index.js';
import { SniContexts } from './tls-context.js';
import type { Identity, IdentityGate } from './identity-gate.js';
import type { UpstreamIdentity } from './forwarding.js';

/** What the edge reads per request: an in-memory view, never the database. */
export interface EdgeView {
  socket(name: string): SocketRecord | undefined;
  connector(id: string): ConnectorRecord | undefined;
  userByEmail(email: string): UserRecord | undefined;
  /** Whether a sign-in session is still valid (not revoked, not expired). */
  sessionLive(id: string): boolean;
  /** The policy set of this snapshot, compiled once. */
  policies(): PolicySet;
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
  /** Serves the control plane's host (API, dashboard), told the resolved client address; absent on an edge-only node. */
  controlHandler?: (req: http.IncomingMessage, res: http.ServerResponse, clientIp: string) => void;
  /** Where audit events go (buffered by the caller). */
  audit: (event: NewAuditEvent) => void;
  /** Long-lived connections, re-decided on every change. */
  live: LiveRegistry;
  geo?: GeoLookup;
  /** Peers whose X-Forwarded-For and PROXY protocol headers are believed; nobody else's. */
  trustedProxies?: CompiledCidrs;
  /** Timeouts and limits of the HTTP front; each has a default. */
  http?: Partial<EdgeHttpLimits>;
  /** Managed `ssh` sockets: the CAs, recordings and host-key pinning they need; without it such sockets are refused. */
  ssh?: Pick<SshSocketOptions, 'userCa' | 'hostKeys' | 'recordings' | 'pinHostKey' | 'limits'>;
  now?: () => Date;
}

export interface EdgeHttpLimits {
  /** Time to receive a request's head. */
  headerTimeoutMs: number;
  /** A request body that sends nothing for this long is cut. */
  bodyIdleTimeoutMs: number;
  /** An idle keep-alive connection is closed after this long. */
  keepAliveTimeoutMs: number;
  /** Open upstream streams one client address may hold on public sockets. */
  maxStreamsPerClient: number;
}

export const DEFAULT_HTTP_LIMITS: EdgeHttpLimits = Object.freeze({ headerTimeoutMs: 30_000, bodyIdleTimeoutMs: 30_000, keepAliveTimeoutMs: 65_000, maxStreamsPerClient: 256 });



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
  /** Client addresses a trusted proxy announced with the PROXY protocol, by `peer-address:port`. */
  private readonly proxied = new Map<string, string>();
  private readonly now: () => Date;
  private readonly tlsSockets: TlsSockets;
  private readonly sshSockets: SshSockets | undefined;

  constructor(private readonly options: EdgeServerOptions) {
    this.now = options.now ?? (() => new Date());
    this.tlsSockets = new TlsSockets({
      view: options.view, hub: options.hub, audit: options.audit, live: options.live, logger: options.logger, now: this.now,
      clientIp: (socket) => this.connectionClientIp(socket), ...(options.geo ? { geo: options.geo } : {}),
    });
    this.sshSockets = options.ssh && new SshSockets({
      ...options.ssh, view: options.view, hub: options.hub, audit: options.audit, live: options.live, logger: options.logger, now: this.now,
      clientIp: (socket) => this.connectionClientIp(socket), ...(options.geo ? { geo: options.geo } : {}),
    });
    this.sni = new SniContexts(options.ca, options.domain);
    const limits = { ...DEFAULT_HTTP_LIMITS, ...options.http };
    this.proxy = new HttpSocketProxy({ hub: options.hub, logger: options.logger, clientIp: (req) => this.httpClientIp(req), bodyIdleTimeoutMs: limits.bodyIdleTimeoutMs, maxStreamsPerClient: limits.maxStreamsPerClient });
    // A whole request has no deadline (uploads may be large); its head and every pause in its body do.
    this.httpServer = http.createServer({
      requestTimeout: 0,
      headersTimeout: limits.headerTimeoutMs,
      keepAliveTimeout: limits.keepAliveTimeoutMs,
      connectionsCheckingInterval: Math.min(30_000, Math.max(250, limits.headerTimeoutMs / 4)),
    });
    // This server never listens (the front door hands it TLS sockets), and Node only starts the
    // check that enforces headersTimeout on 'listening': without this, a head could take forever.
    this.httpServer.emit('listening');
    this.httpServer.on('request', (req, res) => this.onRequest(req, res));
    this.httpServer.on('upgrade', (req, socket, head) => this.onUpgrade(req, socket, head));
    this.httpServer.on('clientError', (err, socket) => {
      const timedOut = (err as NodeJS.ErrnoException).code === 'ERR_HTTP_REQUEST_TIMEOUT';
      if (socket.writable) sendRawProblem(socket, timedOut ? { status: 408, code: 'request_timeout', detail: 'the request head did not arrive in time' } : { status: 400, code: 'bad_request', detail: 'the request is not valid HTTP/1.1' });
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
    let expectProxyHeader = this.options.trustedProxies?.matches(normalizeIp(socket.remoteAddress ?? '')) ?? false;
    const onData = (chunk: Buffer) => {
      buffered = Buffer.concat([buffered, chunk]);
      if (expectProxyHeader) {
        const proxy = parseProxyHeader(buffered);
        if (proxy.kind === 'incomplete') return;
        if (proxy.kind === 'invalid') {
          this.options.logger.info({ remoteAddress: socket.remoteAddress, reason: proxy.reason }, 'malformed PROXY protocol header');
          clearTimeout(timer);
          return void socket.destroy();
        }
        if (proxy.kind === 'proxy') this.rememberProxied(socket, proxy.source);
        if (proxy.kind !== 'none') buffered = buffered.subarray(proxy.headerLength);
        expectProxyHeader = false;
      }
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

  private rememberProxied(socket: net.Socket, source: string): void {
    const key = `${socket.remoteAddress}:${socket.remotePort}`;
    this.proxied.set(key, source);
    socket.once('close', () => this.proxied.delete(key));
  }

  /** The client's address: what a trusted proxy said (PROXY protocol), else the peer's. */
  private connectionClientIp(socket: net.Socket): string {
    return this.proxied.get(`${socket.remoteAddress}:${socket.remotePort}`) ?? normalizeIp(socket.remoteAddress ?? '');
  }

  /** For HTTP, X-Forwarded-For counts too, as far as trusted proxies vouch for it. */
  private httpClientIp(req: http.IncomingMessage): string {
    const peer = this.connectionClientIp(req.socket);
    const trusted = this.options.trustedProxies;
    if (!trusted || trusted.size === 0) return peer;
    const forwarded = req.headers['x-forwarded-for'];
    return clientAddress(peer, Array.isArray(forwarded) ? forwarded.join(',') : forwarded, trusted);
  }

  private requiresClientCertificate(serverName: string | undefined): boolean {
    const route = routeHost(serverName, this.options.domain);
    if (route.kind !== 'socket') return false;
    const record = this.options.view().socket(route.name);
    return record?.type === 'tls' || record?.type === 'ssh';
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
      if (record?.type === 'tls') return this.tlsSockets.accept(socket, record);
      if (record?.type === 'ssh') return this.sshSockets ? this.sshSockets.accept(socket, record) : void socket.destroy();
    }
    this.httpServer.emit('connection', socket);
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

  private onRequest(req: http.IncomingMessage, res: http.ServerResponse): void {
    const route = routeHost(req.headers.host, this.options.domain);
    if (route.kind === 'control') {
      if (this.options.controlHandler) return this.options.controlHandler(req, res, this.httpClientIp(req));
      return sendProblem(req, res, { status: 404, code: 'not_found', detail: 'this node is an edge; the control plane is served elsewhere' });
    }
    if (route.kind === 'unknown') return sendProblem(req, res, { status: 404, code: 'socket_not_found', detail: `${route.host} is not served here` });
    const record = this.options.view().socket(route.name);
    if (!record || record.type === 'tls' || record.type === 'ssh') return sendProblem(req, res, { status: 404, code: 'socket_not_found', detail: `there is no HTTP socket named "${route.name}"` });
    const target = canonicalTarget(req.url ?? '', { rawPaths: record.rawPaths });
    if (!target.ok) return sendProblem(req, res, this.refusedTarget(req, record, target));
    req.url = target.target;
    if (isSignOutPath(target.path)) return this.signOut(req, res, record);
    if (!record.auth.cloudauth) return this.proxy.handleRequest(req, res, record);
    this.gated(req, res, record).catch((err: unknown) => {
      this.options.logger.error({ err, socket: record.name }, 'identity check failed');
      sendProblem(req, res, { status: 500, code: 'internal', detail: 'the identity check failed (see the edge log)' });
    });
  }

  /** The sign-out path is the edge's own on every HTTP socket, signed in or not: never forwarded. */
  private signOut(req: http.IncomingMessage, res: http.ServerResponse, record: SocketRecord): void {
    const identity = this.options.identity;
    if (!identity) return sendProblem(req, res, { status: 404, code: 'not_found', detail: 'sign-in is not configured on this edge' });
    identity.gate.signOut(req, res, record, this.httpClientIp(req)).catch((err: unknown) => {
      this.options.logger.error({ err, socket: record.name }, 'sign-out failed');
      sendProblem(req, res, { status: 500, code: 'internal', detail: 'the sign-out failed (see the edge log); try again' });
    });
  }

  /** A request target the edge will not forward: refused before any decision, and logged. */
  private refusedTarget(req: http.IncomingMessage, record: SocketRecord, refusal: Extract<CanonicalTarget, { ok: false }>): EdgeProblem {
    this.options.logger.info({ socket: record.name, clientIp: this.httpClientIp(req), method: req.method, code: refusal.code }, `request refused: ${refusal.reason}`);
    return { status: 400, code: refusal.code, detail: `${refusal.reason}${refusal.code === 'path_ambiguous' ? ' (a socket created with --raw-paths passes such paths as sent)' : ''}` };
  }

  private async gated(req: http.IncomingMessage, res: http.ServerResponse, record: SocketRecord): Promise<void> {
    const identity = this.options.identity;
    if (!identity) return sendProblem(req, res, { status: 503, code: 'internal', detail: 'sign-in is not configured on this edge' });
    const result = await identity.gate.check(req, res, record);
    if (result.kind === 'answered') return;
    const access = this.decideHttp(req, record, result.identity);
    this.logRequest(req, res, record, result.identity, access);
    if (access.decision.effect === 'deny') return sendProblem(req, res, { status: 403, code: 'forbidden', detail: access.detail, signOutPath: SIGN_OUT_PATH });
    this.proxy.handleRequest(req, res, record, await this.upstreamIdentity(result.identity, record));
  }

  /** One HTTP request (or WebSocket upgrade) decided against the current policies. */
  private decideHttp(req: http.IncomingMessage, record: SocketRecord, identity: Identity) {
    const clientIp = this.httpClientIp(req);
    const country = this.options.geo?.country(clientIp);
    const policies = this.options.view().policies();
    const context = requestContext({ socket: record, user: identity.user, clientIp, country, at: this.now(), action: { protocol: 'http', method: req.method ?? 'GET', path: requestPath(req.url) } });
    const decision = evaluate(context, policies);
    const detail = decision.effect === 'deny' ? denialDetail(context, policies, decision) : decision.summary;
    return { clientIp, country, decision, detail, rule: decidingRule(decision) };
  }

  /** The HTTP request log: one `http.request` event per request on a sign-in socket, written when it ends. */
  private logRequest(req: http.IncomingMessage, res: http.ServerResponse, record: SocketRecord, identity: Identity, access: ReturnType<EdgeServer['decideHttp']>): void {
    const bytesBefore = req.socket.bytesWritten;
    const started = this.now();
    res.once('close', () => {
      this.options.audit({
        type: 'http.request', at: started.toISOString(), actor: identity.user.email, socket: record.name, clientIp: access.clientIp, country: access.country ?? '',
        decision: access.decision.effect, rule: access.rule, reason: access.detail, sessionId: identity.session.id,
        details: { method: req.method ?? 'GET', path: requestPath(req.url), status: res.statusCode, bytes: Math.max(0, req.socket.bytesWritten - bytesBefore), durationMs: this.now().getTime() - started.getTime() },
      });
    });
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
    if (!record || record.type === 'tls' || record.type === 'ssh') return sendRawProblem(client, { status: 404, code: 'socket_not_found', detail: 'no such HTTP socket' });
    const target = canonicalTarget(req.url ?? '', { rawPaths: record.rawPaths });
    if (!target.ok) return sendRawProblem(client, this.refusedTarget(req, record, target));
    req.url = target.target;
    if (isSignOutPath(target.path)) return sendRawProblem(client, { status: 400, code: 'bad_request', detail: `${SIGN_OUT_PATH} is Postern's sign-out page: it takes no upgrade` });
    if (!record.auth.cloudauth) return this.proxy.handleUpgrade(req, client, head, record);
    const identity = this.options.identity;
    if (!identity) return sendRawProblem(client, { status: 503, code: 'internal', detail: 'sign-in is not configured on this edge' });
    const who = identity.gate.authorize(req, record);
    if ('status' in who) return sendRawProblem(client, who);
    const access = this.decideHttp(req, record, who);
    const base = { actor: who.user.email, socket: record.name, clientIp: access.clientIp, country: access.country ?? '', sessionId: who.session.id, rule: access.rule };
    if (access.decision.effect === 'deny') {
      this.options.audit({ type: 'access.denied', ...base, decision: 'deny', reason: access.detail, details: { protocol: 'websocket', path: requestPath(req.url) } });
      return sendRawProblem(client, { status: 403, code: 'forbidden', detail: access.detail });
    }
    const id = newConnectionId();
    const started = this.now();
    const decide = (): Verdict => {
      const current = this.options.view().socket(record.name);
      const again = current ? identity.gate.authorize(req, current) : { detail: `socket "${record.name}" no longer exists` };
      if ('detail' in again) return { keep: false, reason: again.detail };
      const next = this.decideHttp(req, current!, again);
      return next.decision.effect === 'deny'
        ? { keep: false, reason: next.detail, rule: next.rule }
        : { keep: true, rule: next.rule, ...(next.decision.recheckAt ? { recheckAt: next.decision.recheckAt } : {}) };
    };
    this.upstreamIdentity(who, record).then(
      (upstream) => this.proxy.handleUpgrade(req, client, head, record, upstream, {
        answered: (status) => {
          this.options.audit({ type: 'http.request', ...base, at: started.toISOString(), decision: 'allow', reason: access.detail, details: { method: req.method ?? 'GET', path: requestPath(req.url), status, upgrade: 'refused by the upstream' } });
        },
        opened: (counters) => {
          this.options.audit({ type: 'connection.open', ...base, connectionId: id, decision: 'allow', details: { protocol: 'websocket', path: requestPath(req.url) } });
          this.options.live.add({ id, protocol: 'websocket', socket: record.name, userId: who.user.id, email: who.user.email, sessionId: who.session.id, clientIp: access.clientIp, country: access.country ?? '', startedAt: started, counters, decide, close: () => client.destroy() }, access.decision.recheckAt);
        },
        closed: () => this.options.live.closed(id, 'closed'),
      }),
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
