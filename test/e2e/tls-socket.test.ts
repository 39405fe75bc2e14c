// E2E: `tls` sockets with sign-in require a client certificate from Postern's CA in the TLS
// handshake (an alert otherwise, nothing reaches the upstream); allowed users get a byte pipe.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import tls from 'node:tls';
import { createKeyAndCsr } from '../../src/ca/csr.js';
import { cleanupAll, startConnector, startServer, writeConnectorConfig } from '../helpers/processes.js';
import type { ServerHandle } from '../helpers/processes.js';
import { api } from '../helpers/https.js';
import { tempDir, waitFor, withTimeout } from '../helpers/util.js';

describe('tls sockets with client certificates', () => {
  let server: ServerHandle;
  let echo: net.Server;
  let upstreamConnections = 0;

  const certificateFor = async (email: string) => {
    const { keyPem, csrPem } = await createKeyAndCsr(email);
    const res = await api(server, '/api/v1/certificates/tls', { method: 'POST', body: { csr: csrPem, email, ttl_seconds: 600 } });
    assert.equal(res.status, 201, res.text);
    return { key: keyPem, cert: res.json<{ certificate: string }>().certificate };
  };

  /** Connects with SNI db.localhost, sends a line, resolves with the echo or the error. */
  const roundTrip = (identity?: { key: string; cert: string }) => withTimeout(new Promise<string>((resolve, reject) => {
    const socket = tls.connect({ host: '127.0.0.1', port: server.port, servername: 'db.localhost', ca: server.caPem, ...identity });
    let received = '';
    socket.on('secureConnect', () => socket.write('ping\n'));
    socket.on('data', (chunk) => {
      received += chunk.toString();
      if (received.endsWith('\n')) {
        socket.end();
        resolve(received.trim());
      }
    });
    socket.on('error', reject);
    socket.on('close', () => reject(new Error(`closed after "${received}"`)));
  }), 10_000, 'tls round trip');

  before(async () => {
    echo = net.createServer((socket) => {
      upstreamConnections++;
      socket.pipe(socket);
    });
    await new Promise<void>((resolve) => echo.listen(0, '127.0.0.1', resolve));
    const echoPort = (echo.address() as net.AddressInfo).port;
    server = await startServer();
    for (const email of ['ana@corp.example', 'eve@other.example']) {
      assert.equal((await api(server, '/api/v1/users', { method: 'POST', body: { email } })).status, 201);
    }
    const created = await api(server, '/api/v1/sockets', { method: 'POST', body: { name: 'db', type: 'tls', upstream: `tcp://127.0.0.1:${echoPort}`, allowed_email_domains: ['corp.example'] } });
    assert.equal(created.status, 201, created.text);
    const token = await server.cli(['connector', 'token', 'create', '--name', 'tls']);
    const dir = (await tempDir()).path;
    const config = await writeConnectorConfig(dir, 'c.yaml', { server: server.url, token: token.stdout.trim(), sockets: [{ name: 'db', type: 'tls', upstream: `tcp://127.0.0.1:${echoPort}` }] });
    await startConnector(['connector', 'start', '--config', config], server.env);
  });

  after(async () => {
    await cleanupAll();
    await new Promise<void>((resolve) => echo?.close(() => resolve()));
  });

  test('an allowed user with a certificate gets a byte pipe to the upstream', async () => {
    assert.equal(await roundTrip(await certificateFor('ana@corp.example')), 'ping');
  });

  test('no certificate: the handshake fails with an alert and nothing reaches the upstream', async () => {
    const before = upstreamConnections;
    await assert.rejects(roundTrip(), (err: NodeJS.ErrnoException) => /certificate|alert|closed|socket hang up|ECONNRESET/i.test(`${err.code} ${err.message}`));
    assert.equal(upstreamConnections, before);
  });

  test('a user outside the allowed domains is cut before any byte reaches the upstream; the log says why', async () => {
    const before = upstreamConnections;
    await assert.rejects(roundTrip(await certificateFor('eve@other.example')));
    assert.equal(upstreamConnections, before);
    await waitFor(() => /eve@other\.example is not in the allowed domains corp\.example/.test(server.logs()), { what: 'the refusal in the server log' });
  });
});
