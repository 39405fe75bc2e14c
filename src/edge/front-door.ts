// The edge's public port before TLS: an optional PROXY protocol header from a trusted proxy, then
// a PostgreSQL SSLRequest answered 'S' when one comes first (or a CancelRequest, which libpq sends in
// the clear on a connection of its own), then a peek at the ClientHello (bounded in size and time)
// whose SNI picks the TLS server: `tls`, `ssh` and `postgres` sockets require a client certificate
// in the handshake, everything else may offer one.
import net from 'node:net';
import tls from 'node:tls';
import type http from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Duplex } from 'node:stream';
import type { Logger } from 'pino';
import type { CertificateAuthority } from '../ca/index.js';
import { LEGACY_TUNNEL_ALPN, TUNNEL_ALPN } from '../tunnel/index.js';
import { canonicalIp, clientAddress, parseProxyHeader } from '../reporting/index.js';
import type { CompiledCidrs } from '../reporting/index.js';
import { MAX_STARTUP_LENGTH, SqlState, errorResponse } from '../pgwire/index.js';
import { MAX_HELLO_BYTES, peekClientHello } from './client-hello.js';
import { routeHost } from './routing.js';
import { SniContexts } from './tls-context.js';
import type { EdgeView } from './view.js';

export interface FrontDoorOptions {
  host: string;
  port: number;
  domain: string;
  ca: CertificateAuthority;
  view: () => EdgeView;
  logger: Logger;
  /** Peers whose X-Forwarded-For and PROXY protocol headers are believed; nobody else's. */
  trustedProxies?: CompiledCidrs;
  /** Every completed handshake, from either TLS server. */
  onSecureConnection: (socket: tls.TLSSocket) => void;
  /** A PostgreSQL CancelRequest in the clear (the connection is closed right after, unanswered, as PostgreSQL does). */
  onCancelRequest?: (processId: number, secretKey: Buffer, clientIp: string) => void;
}

export class FrontDoor {
  /** The public port: reads the ClientHello's SNI, then hands the bytes to one of the TLS servers. */
  private readonly front: net.Server;
  private readonly tlsServer: tls.Server;
  /** For `tls` sockets: a client certificate from Postern's CA is required in the handshake. */
  private readonly certTlsServer: tls.Server;
  private readonly sni: SniContexts;
  private readonly connections = new Set<Duplex>();
  /** Client addresses a trusted proxy announced with the PROXY protocol, by `peer-address:port`. */
  private readonly proxied = new Map<string, string>();

  constructor(private readonly options: FrontDoorOptions) {
    this.sni = new SniContexts(options.ca, options.domain);
    this.tlsServer = tls.createServer({
      SNICallback: this.sni.sniCallback(),
      ALPNProtocols: [TUNNEL_ALPN, LEGACY_TUNNEL_ALPN, 'http/1.1'],
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
      server.on('secureConnection', (socket) => options.onSecureConnection(socket));
      server.on('tlsClientError', (err, socket) => options.logger.info({ err: err.message, remoteAddress: socket.remoteAddress }, 'TLS handshake refused'));
    }
    this.front = net.createServer({ allowHalfOpen: true, noDelay: true }, (socket) => this.route(socket));
  }

  /** The client's address: what a trusted proxy said (PROXY protocol), else the peer's. */
  clientIp(socket: net.Socket): string {
    return this.proxied.get(`${socket.remoteAddress}:${socket.remotePort}`) ?? canonicalIp(socket.remoteAddress ?? '');
  }

  /** For HTTP, X-Forwarded-For counts too, as far as trusted proxies vouch for it. */
  httpClientIp(req: http.IncomingMessage): string {
    const peer = this.clientIp(req.socket);
    const trusted = this.options.trustedProxies;
    if (!trusted || trusted.size === 0) return peer;
    const forwarded = req.headers['x-forwarded-for'];
    return clientAddress(peer, Array.isArray(forwarded) ? forwarded.join(',') : forwarded, trusted);
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

  /** Stops accepting; resolves once every connection it took is gone. */
  stopAccepting(): Promise<void> {
    return new Promise<void>((resolve) => this.front.close(() => resolve()));
  }

  /** Cuts every connection still open. */
  destroyConnections(): void {
    for (const socket of this.connections) socket.destroy();
  }

  private async defaultCredentials(): Promise<tls.SecureContextOptions> {
    const credentials = await this.options.ca.serverCredentials(this.options.domain);
    return { key: credentials.keyPem, cert: `${credentials.certPem.trim()}\n${this.options.ca.certificatePem.trim()}\n`, ca: this.options.ca.certificatePem };
  }

  /** Peeks the ClientHello (bounded in size and time) and picks the TLS server for its SNI. */
  private route(socket: net.Socket): void {
    this.connections.add(socket);
    socket.once('close', () => this.connections.delete(socket));
    socket.on('error', () => socket.destroy());
    let buffered = Buffer.alloc(0);
    const timer = setTimeout(() => socket.destroy(), 10_000);
    let expectProxyHeader = this.options.trustedProxies?.matches(canonicalIp(socket.remoteAddress ?? '')) ?? false;
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
      const cancel = postgresCancelRequest(buffered);
      if (cancel === 'incomplete') return;
      if (cancel) {
        clearTimeout(timer);
        socket.off('data', onData);
        this.options.onCancelRequest?.(cancel.processId, cancel.secretKey, this.clientIp(socket));
        return void socket.end();
      }
      // A PostgreSQL client asks for TLS in the clear first (postgres sockets): answer, then peek its ClientHello.
      const encryption = postgresEncryptionRequest(buffered);
      if (encryption === 'incomplete') return;
      if (encryption === 'cleartext') {
        clearTimeout(timer);
        return void socket.end(PLAINTEXT_REFUSAL);
      }
      if (encryption) {
        socket.write(encryption === 'ssl' ? 'S' : 'N');
        buffered = buffered.subarray(POSTGRES_REQUEST_LENGTH);
        if (buffered.length === 0) return;
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

  private requiresClientCertificate(serverName: string | undefined): boolean {
    const route = routeHost(serverName, this.options.domain);
    if (route.kind !== 'socket') return false;
    const record = this.options.view().socket(route.name);
    return record?.type === 'tls' || record?.type === 'ssh' || record?.type === 'postgres';
  }
}

const POSTGRES_REQUEST_LENGTH = 8;
const SSL_REQUEST = Buffer.from('0000000804d2162f', 'hex');
const GSSENC_REQUEST = Buffer.from('0000000804d21630', 'hex');
const PLAINTEXT_REFUSAL = errorResponse({ severity: 'FATAL', code: SqlState.invalidAuthorization, message: 'Postern requires TLS (sslmode=verify-full, or postern client db)' });

const CANCEL_REQUEST_LENGTH = 16;
/** Length 16 and the cancel request code 80877102. */
const CANCEL_REQUEST_HEAD = Buffer.from('0000001004d2162e', 'hex');

/** A PostgreSQL CancelRequest at the start of `buffered` (it starts with 0x00, so it is no ClientHello either). */
export function postgresCancelRequest(buffered: Buffer): { processId: number; secretKey: Buffer } | 'incomplete' | undefined {
  const head = buffered.subarray(0, CANCEL_REQUEST_HEAD.length);
  if (!CANCEL_REQUEST_HEAD.subarray(0, head.length).equals(head)) return undefined;
  if (buffered.length < CANCEL_REQUEST_LENGTH) return 'incomplete';
  return { processId: buffered.readInt32BE(8), secretKey: Buffer.from(buffered.subarray(12, CANCEL_REQUEST_LENGTH)) };
}

/**
 * A PostgreSQL SSLRequest (answered 'S') or GSSENCRequest (answered 'N', libpq then asks for TLS)
 * at the start of `buffered`; it starts with 0x00, a ClientHello with 0x16, so they cannot be confused.
 */
export function postgresEncryptionRequest(buffered: Buffer): 'ssl' | 'gssenc' | 'cleartext' | 'incomplete' | undefined {
  if (buffered.length === 0 || buffered[0] !== 0) return undefined;
  if (buffered.length < POSTGRES_REQUEST_LENGTH) return SSL_REQUEST.subarray(0, buffered.length).equals(buffered) || GSSENC_REQUEST.subarray(0, buffered.length).equals(buffered) ? 'incomplete' : undefined;
  const head = buffered.subarray(0, POSTGRES_REQUEST_LENGTH);
  if (head.equals(SSL_REQUEST)) return 'ssl';
  if (head.equals(GSSENC_REQUEST)) return 'gssenc';
  // A protocol 3.x StartupMessage in the clear (a client with sslmode=disable).
  return head.readUInt32BE(0) <= MAX_STARTUP_LENGTH && head.readUInt16BE(4) === 3 ? 'cleartext' : undefined;
}
