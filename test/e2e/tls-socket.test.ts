// E2E: `tls` sockets with sign-in require a client certificate from Postern's CA in the TLS
// handshake (an alert otherwise, nothing reaches the upstream); allowed users get a byte pipe.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import tls from 'node:tls';
import { createKeyAndCsr } from '../../src/ca/csr.js';
import { cleanupAll, startConnector, startServer, waitForAudit, writeConnectorConfig } from '../helpers/processes.js';
import type { ServerHandle } from '../helpers/processes.js';
import { api } from '../helpers/https.js';
import { freePort, tempDir, withTimeout } from '../helpers/util.js';
import { execFile } from 'node:child_process';
import { spawnCli } from '../helpers/processes.js';
import { signedInLaptop } from '../helpers/login.js';

const PASSWORD = 'correct horse battery staple';
const PG = new URL(process.env.POSTERN_TEST_PG ?? 'postgres://postgres@127.0.0.1:5432/test');
const PG_HOST = PG.hostname;
const PG_PORT = Number(PG.port || 5432);
const PG_USER = decodeURIComponent(PG.username || 'postgres');
const PG_DB = PG.pathname.slice(1) || 'test';

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
      assert.equal((await api(server, '/api/v1/users', { method: 'POST', body: { email, password: PASSWORD } })).status, 201);
    }
    for (const [name, upstream] of [['db', `tcp://127.0.0.1:${echoPort}`], ['pg', `tcp://${PG_HOST}:${PG_PORT}`]] as const) {
      const created = await api(server, '/api/v1/sockets', { method: 'POST', body: { name, type: 'tls', upstream, allowed_email_domains: ['corp.example'] } });
      assert.equal(created.status, 201, created.text);
    }
    const token = await server.cli(['connector', 'token', 'create', '--name', 'tls', '--socket', 'db', '--socket', 'pg']);
    const dir = (await tempDir()).path;
    const config = await writeConnectorConfig(dir, 'c.yaml', { server: server.url, token: token.stdout.trim(), sockets: [{ name: 'db', type: 'tls', upstream: `tcp://127.0.0.1:${echoPort}` }, { name: 'pg', type: 'tls', upstream: `tcp://${PG_HOST}:${PG_PORT}` }] });
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

  test('a user outside the allowed domains is cut before any byte reaches the upstream; the audit record says why', async () => {
    const before = upstreamConnections;
    await assert.rejects(roundTrip(await certificateFor('eve@other.example')));
    assert.equal(upstreamConnections, before);
    const denied = await waitForAudit(server, ['--socket', 'db', '--decision', 'deny'], (e) => e.actor === 'eve@other.example', 'the refusal in the audit trail');
    assert.equal(denied.type, 'access.denied');
    assert.match(denied.reason, /no rule allows this .*email domain other\.example is not one of corp\.example/);
    assert.equal(denied.clientIp, '127.0.0.1');
  });

  test('`postern client tls --listen` serves a local port: real psql reaches PostgreSQL through the socket', async (t) => {
    const psql = (port: number) => new Promise<{ code: number | null; stdout: string; stderr: string }>((resolve) => {
      execFile('psql', ['-h', '127.0.0.1', '-p', String(port), '-U', PG_USER, '-d', PG_DB, '-tA', '-c', 'select 40 + 2'], { timeout: 15_000, env: { ...process.env, PGCONNECT_TIMEOUT: '10' } },
        (err, stdout, stderr) => resolve({ code: err ? 1 : 0, stdout, stderr }));
    });
    const direct = await psql(PG_PORT);
    if (direct.code !== 0) {
      if (process.env.CI === 'true') assert.fail(`PostgreSQL is unreachable at ${PG_HOST}:${PG_PORT}: ${direct.stderr}`);
      return t.skip(`PostgreSQL unreachable at ${PG_HOST}:${PG_PORT}`);
    }
    const laptop = await signedInLaptop(server, 'ana@corp.example', PASSWORD);
    const localPort = await freePort();
    const forward = spawnCli('client tls --listen', ['client', 'tls', '--host', 'pg.localhost', '--listen', `127.0.0.1:${localPort}`], laptop);
    await forward.waitForOutput(/forwarding 127\.0\.0\.1:\d+ → pg\.localhost/);
    const through = await psql(localPort);
    assert.equal(through.code, 0, through.stderr);
    assert.equal(through.stdout.trim(), '42');
    const closed = await waitForAudit(server, ['--socket', 'pg', '--type', 'connection.close'], (e) => e.actor === 'ana@corp.example', 'the connection record');
    assert.ok(Number(closed.details.bytesDown) > 0, JSON.stringify(closed.details));
  });
});
