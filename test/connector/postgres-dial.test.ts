// The connector's dial to a PostgreSQL upstream for a TLS login, against loopback servers that
// answer the SSLRequest wrongly: no TLS, bytes injected before the handshake, silence cut short.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import { dialUpstream } from '../../src/connector/postgres.js';
import { isPosternError } from '../../src/errors.js';

/** A server that answers the first 8 bytes (the SSLRequest) with `answer`, then closes when `close`. */
async function answering(answer: Buffer, close: boolean): Promise<{ url: URL; stop: () => Promise<void> }> {
  const sockets = new Set<net.Socket>();
  const server = net.createServer((socket) => {
    sockets.add(socket);
    socket.once('data', () => (close ? socket.end(answer) : socket.write(answer)));
    socket.on('error', () => undefined);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as net.AddressInfo;
  return {
    url: new URL(`tcp://127.0.0.1:${port}`),
    stop: () => new Promise((resolve) => {
      for (const socket of sockets) socket.destroy();
      server.close(() => resolve());
    }),
  };
}

const tlsLogin = { user: 'reporting', ca: '/dev/null' };

test('a TLS login refuses an upstream that answers N, injects bytes after S, or closes at the SSLRequest', async () => {
  const cases: [Buffer, boolean, RegExp][] = [
    [Buffer.from('N'), false, /does not accept TLS \(answered "N" to the SSLRequest; is ssl on\?\)/],
    [Buffer.from('SQ\0\0\0\x04'), false, /answered the SSLRequest with more than one byte/],
    [Buffer.alloc(0), true, /closed the connection at the SSLRequest/],
  ];
  for (const [answer, close, expected] of cases) {
    const upstream = await answering(answer, close);
    try {
      await assert.rejects(dialUpstream(upstream.url, tlsLogin), (err: unknown) => {
        assert.ok(isPosternError(err, 'upstream_unreachable'), String(err));
        assert.match(err.message, expected);
        return true;
      });
    } finally {
      await upstream.stop();
    }
  }
});

test('an unreadable certificate file and a refused connection are named', async () => {
  await assert.rejects(dialUpstream(new URL('tcp://127.0.0.1:1'), { user: 'reporting', cert: '/nonexistent/r.crt', key: '/nonexistent/r.key' }),
    /cannot read the cert of reporting: ENOENT/);
  const closed = await answering(Buffer.alloc(0), true);
  const { port } = closed.url;
  await closed.stop();
  await assert.rejects(dialUpstream(new URL(`tcp://127.0.0.1:${port}`), { user: 'app' }), /upstream 127\.0\.0\.1:\d+: ECONNREFUSED/);
});
