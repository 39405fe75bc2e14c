// Network middlemen the tests own: a TCP relay whose connections can be cut one by one, and
// an HTTP CONNECT proxy that counts what it tunnels. Both only ever dial 127.0.0.1.
import http from 'node:http';
import net from 'node:net';
import type { AddressInfo } from 'node:net';

export interface RelayedConnection {
  readonly id: number;
  readonly client: net.Socket;
  readonly upstream: net.Socket;
  /** The client's TLS ClientHello offered ALPN postern/2: a connector tunnel. */
  tunnel: boolean;
  closed: boolean;
}

export interface TcpRelay {
  readonly port: number;
  readonly connections: readonly RelayedConnection[];
  /** Open connections that carry a connector tunnel. */
  openTunnels(): RelayedConnection[];
  /** Destroys both halves of one relayed connection, as a network failure would. */
  cut(connection: RelayedConnection): void;
  close(): Promise<void>;
}

const ALPN_TUNNEL = Buffer.from('postern/2');

export async function startTcpRelay(targetPort: number): Promise<TcpRelay> {
  const connections: RelayedConnection[] = [];
  let nextId = 1;
  const server = net.createServer((client) => {
    const upstream = net.connect({ host: '127.0.0.1', port: targetPort });
    const connection: RelayedConnection = { id: nextId++, client, upstream, tunnel: false, closed: false };
    connections.push(connection);
    client.once('data', (first: Buffer) => {
      connection.tunnel = first.includes(ALPN_TUNNEL);
    });
    const close = () => {
      connection.closed = true;
      client.destroy();
      upstream.destroy();
    };
    client.on('error', close).on('close', close);
    upstream.on('error', close).on('close', close);
    client.pipe(upstream);
    upstream.pipe(client);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    port: (server.address() as AddressInfo).port,
    connections,
    openTunnels: () => connections.filter((c) => c.tunnel && !c.closed),
    cut: (connection) => {
      connection.closed = true;
      connection.client.destroy();
      connection.upstream.destroy();
    },
    close: async () => {
      for (const c of connections) (c.client.destroy(), c.upstream.destroy());
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

export interface ConnectProxy {
  readonly port: number;
  readonly url: string;
  /** Targets of every CONNECT request received (`host:port`). */
  readonly connects: readonly string[];
  /** Requests that were not CONNECT (a proxy-only network would see nothing else). */
  readonly otherRequests: number;
  close(): Promise<void>;
}

/** A minimal forward proxy: CONNECT to localhost / 127.0.0.1 only, anything else refused. */
export async function startConnectProxy(): Promise<ConnectProxy> {
  const connects: string[] = [];
  const sockets = new Set<net.Socket>();
  let otherRequests = 0;
  const server = http.createServer((_req, res) => {
    otherRequests++;
    res.writeHead(405, { connection: 'close' }).end('CONNECT only\n');
  });
  server.on('connect', (req: http.IncomingMessage, client: net.Socket, head: Buffer) => {
    const target = req.url ?? '';
    connects.push(target);
    sockets.add(client);
    client.on('close', () => sockets.delete(client)).on('error', () => client.destroy());
    const match = /^(localhost|127\.0\.0\.1):(\d+)$/.exec(target);
    if (!match) return void client.end('HTTP/1.1 403 Forbidden\r\nconnection: close\r\n\r\n');
    const upstream = net.connect({ host: '127.0.0.1', port: Number(match[2]) });
    sockets.add(upstream);
    upstream.on('close', () => (sockets.delete(upstream), client.destroy()));
    upstream.on('error', () => upstream.destroy());
    client.on('close', () => upstream.destroy());
    upstream.once('connect', () => {
      client.write('HTTP/1.1 200 Connection Established\r\n\r\n');
      if (head.length > 0) upstream.write(head);
      client.pipe(upstream);
      upstream.pipe(client);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as AddressInfo).port;
  return {
    port,
    url: `http://127.0.0.1:${port}`,
    connects,
    get otherRequests() {
      return otherRequests;
    },
    close: async () => {
      for (const socket of sockets) socket.destroy();
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
