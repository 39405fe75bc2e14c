// Connectors' tunnels into the edge: TLS with ALPN postern/2, or a WebSocket upgrade on the
// control host for networks that only allow web traffic. Either way the certificate must chain
// to Postern's CA and name a connector that exists and is not revoked. A connector of the
// earlier protocol is told why it is refused instead of being left to hang.
import type http from 'node:http';
import type tls from 'node:tls';
import type { Duplex } from 'node:stream';
import type { Logger } from 'pino';
import { WebSocketServer, createWebSocketStream } from 'ws';
import { legacyRefusal, refuseLegacyTunnel } from '../tunnel/index.js';
import type { TunnelHub, TunnelPeer } from '../tunnel/index.js';
import { canonicalIp } from '../reporting/index.js';
import { sendRawProblem } from './error-page.js';
import type { EdgeView } from './view.js';

export interface TunnelAcceptOptions {
  hub: TunnelHub;
  view: () => EdgeView;
  logger: Logger;
}

export class TunnelAcceptor {
  private readonly upgrades = new WebSocketServer({ noServer: true, perMessageDeflate: false, maxPayload: 16 * 1024 * 1024 });

  constructor(private readonly options: TunnelAcceptOptions) {}

  /** A connector's tunnel on `socket` (carried by `duplex` when it runs over a WebSocket). */
  accept(socket: tls.TLSSocket, transport: TunnelPeer['transport'], duplex: Duplex = socket): void {
    const peer = this.authenticate(socket);
    if (!peer) {
      duplex.destroy();
      return;
    }
    socket.setNoDelay(true);
    this.options.hub.attach(duplex, { ...peer, transport });
  }

  /** A connector that offered only the earlier protocol: answered with every socket refused, and the reason. */
  refuseLegacy(socket: tls.TLSSocket): void {
    if (!this.authenticate(socket)) return void socket.destroy();
    refuseLegacyTunnel(socket, this.options.hub.edgeId, this.options.logger);
  }

  /** The earlier protocol's WebSocket path: 426 with the reason. */
  refuseLegacyUpgrade(client: Duplex): void {
    sendRawProblem(client, { status: 426, code: 'tunnel_version_unsupported', detail: legacyRefusal(this.options.hub.edgeId) });
  }

  /** The WebSocket fallback: the certificate is checked before the upgrade is answered. */
  upgrade(req: http.IncomingMessage, client: Duplex, head: Buffer): void {
    const socket = req.socket as tls.TLSSocket;
    if (!this.authenticate(socket)) return sendRawProblem(client, { status: 401, code: 'certificate_invalid', detail: 'a connector certificate is required' });
    this.upgrades.handleUpgrade(req, client, head, (ws) => {
      this.accept(socket, 'websocket', createWebSocketStream(ws));
    });
  }

  private authenticate(socket: tls.TLSSocket): Omit<TunnelPeer, 'transport'> | undefined {
    const { logger } = this.options;
    const remoteAddress = canonicalIp(socket.remoteAddress ?? '');
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
}
