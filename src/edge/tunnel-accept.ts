// Connectors' tunnels into the edge: TLS with ALPN postern/1, or a WebSocket upgrade on the
// control host for networks that only allow web traffic. Either way the certificate must chain
// to Postern's CA and name a connector that exists and is not revoked.
import type http from 'node:http';
import type tls from 'node:tls';
import type { Duplex } from 'node:stream';
import type { Logger } from 'pino';
import { WebSocketServer, createWebSocketStream } from 'ws';
import type { TunnelHub, TunnelPeer } from '../tunnel/edge-side.js';
import { canonicalIp } from '../reporting/cidr.js';
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
