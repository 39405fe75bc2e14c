// ClientHello peeking: real hellos from Node's TLS client (SNI, ALPN, none), split records,
// garbage and truncation.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import tls from 'node:tls';
import { peekClientHello } from '../../src/edge/client-hello.js';

/** Captures the first bytes a real TLS client sends. */
async function captureHello(options: tls.ConnectionOptions): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const server = net.createServer((socket) => {
      socket.once('data', (chunk) => {
        resolve(chunk);
        socket.destroy();
        server.close();
      });
    });
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as net.AddressInfo;
      const client = tls.connect({ host: '127.0.0.1', port, rejectUnauthorized: false, ...options });
      client.on('error', () => undefined);
    });
    server.on('error', reject);
  });
}

test('client hello: SNI and ALPN from a real TLS client', async () => {
  const hello = await captureHello({ servername: 'Grafana.Localhost', ALPNProtocols: ['postern/1', 'http/1.1'] });
  assert.deepEqual(peekClientHello(hello), { kind: 'hello', info: { serverName: 'grafana.localhost', alpn: ['postern/1', 'http/1.1'] } });
});

test('client hello: no SNI (an IP address) and no ALPN', async () => {
  const hello = await captureHello({});
  assert.deepEqual(peekClientHello(hello), { kind: 'hello', info: { alpn: [] } });
});

test('client hello: incomplete until the whole record is there; garbage is invalid', async () => {
  const hello = await captureHello({ servername: 'db.localhost' });
  for (const cut of [0, 3, 5, 40, hello.length - 1]) assert.equal(peekClientHello(hello.subarray(0, cut)).kind, 'incomplete', `cut at ${cut}`);
  assert.equal(peekClientHello(Buffer.from('GET / HTTP/1.1\r\n\r\n')).kind, 'invalid');
  const lying = Buffer.from(hello);
  lying.writeUIntBE(0xffffff, 6, 3);
  assert.equal(peekClientHello(lying).kind, 'invalid');
  const tooLong = Buffer.from([22, 3, 1, 0x50, 0x00]);
  assert.equal(peekClientHello(tooLong).kind, 'invalid');
});
