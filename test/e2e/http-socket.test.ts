// E2E: an HTTP socket served by a real connector — curl and node clients, headers, streaming, WebSocket, 100 MiB both ways, error pages, `postern connect`.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { createWriteStream } from 'node:fs';
import { join } from 'node:path';
import { pipeline } from 'node:stream/promises';
import WebSocket from 'ws';
import type { ClientOptions, RawData } from 'ws';
import { cleanupAll, startConnector, startServer, writeConnectorConfig } from '../helpers/processes.js';
import type { ConnectorHandle, ServerHandle } from '../helpers/processes.js';
import { curl, httpsFetch, httpsRequest, loopbackLookup } from '../helpers/https.js';
import { patternSha256, patternStream, startUpstream } from '../helpers/upstream.js';
import type { Upstream } from '../helpers/upstream.js';
import { freePort, tempDir, waitFor, withTimeout } from '../helpers/util.js';

const MiB = 1024 * 1024;

interface Echo {
  method: string;
  url: string;
  headers: Record<string, string | undefined>;
}

describe('HTTP socket through a connector', () => {
  let server: ServerHandle;
  let upstream: Upstream;
  let connector: ConnectorHandle;
  let workDir: string;

  const socketRequest = (name: string, path: string, init: { method?: string; headers?: Record<string, string> } = {}) =>
    httpsFetch({ port: server.port, ca: server.caPem, host: `${name}.localhost`, path, ...init });

  before(async () => {
    workDir = (await tempDir()).path;
    upstream = await startUpstream();
    server = await startServer();
    const closedPort = await freePort();
    const created = await Promise.all([
      server.cli(['socket', 'create', '--name', 'app', '--type', 'http', '--upstream', upstream.url]),
      server.cli(['socket', 'create', '--name', 'refused', '--type', 'http', '--upstream', `http://127.0.0.1:${closedPort}`]),
      server.cli(['socket', 'create', '--name', 'nobody', '--type', 'http']),
    ]);
    for (const result of created) assert.equal(result.code, 0, result.stderr);
    const joinToken = await server.cli(['connector', 'token', 'create', '--name', 'e2e-http', '--ttl', '10m', '--socket', 'app', '--socket', 'refused']);
    assert.equal(joinToken.code, 0, joinToken.stderr);
    const token = joinToken.stdout.trim();
    assert.match(token, /^pjt1\.[\w-]+\.[\w-]+$/);
    const config = await writeConnectorConfig(workDir, 'connector.yaml', {
      server: server.url, token, connections: 2,
      sockets: [{ name: 'app', type: 'http', upstream: upstream.url }, { name: 'refused', type: 'http', upstream: `http://127.0.0.1:${closedPort}` }],
    });
    connector = await startConnector(['connector', 'start', '--config', config], server.env);
    assert.match(connector.process.stdout, /serving app, refused/);
  });

  after(async () => {
    await cleanupAll();
    await upstream?.close();
  });

  test('real curl reaches the upstream by name with only --cacert', async () => {
    const result = await curl([`https://app.localhost:${server.port}/hello?x=1`, '-H', 'X-Auth-Email: mallory@evil.example'], { caFile: server.caFile });
    assert.equal(result.code, 0, result.stderr);
    const echo = JSON.parse(result.stdout) as Echo;
    assert.equal(echo.method, 'GET');
    assert.equal(echo.url, '/hello?x=1');
    assert.equal(echo.headers.host, `app.localhost:${server.port}`);
    assert.equal(echo.headers['x-auth-email'], undefined);
    assert.match(echo.headers['user-agent'] ?? '', /^curl\//);
  });

  test('real curl uploads a 5 MiB file (Expect: 100-continue) intact', async () => {
    const size = 5 * MiB;
    const file = join(workDir, 'upload.bin');
    await pipeline(patternStream(size), createWriteStream(file));
    const result = await curl(['-v', '--data-binary', `@${file}`, '-H', 'content-type: application/octet-stream', `https://app.localhost:${server.port}/sha256`], { caFile: server.caFile });
    assert.equal(result.code, 0, result.stderr);
    assert.match(result.stderr, /Expect: 100-continue/i, 'curl asked for 100-continue');
    assert.deepEqual(JSON.parse(result.stdout), { sha256: patternSha256(size), bytes: size });
  });

  test('node https: Host kept, X-Forwarded-* set by the edge, spoofed identity headers stripped', async () => {
    const res = await socketRequest('app', '/headers', {
      method: 'POST',
      headers: {
        'x-auth-email': 'mallory@evil.example', 'x-auth-user': 'mallory', 'x-auth-groups': 'admins',
        'x-postern-jwt-assertion': 'forged.jwt.value', 'x-forwarded-for': '6.6.6.6', 'x-custom': 'kept',
      },
    });
    assert.equal(res.status, 200);
    assert.equal(res.headers['x-upstream'], 'e2e', 'response headers come back from the upstream');
    const { headers } = res.json<Echo>();
    assert.equal(headers.host, `app.localhost:${server.port}`);
    assert.equal(headers['x-forwarded-host'], `app.localhost:${server.port}`);
    assert.equal(headers['x-forwarded-proto'], 'https');
    assert.equal(headers['x-forwarded-for'], '127.0.0.1', 'the edge sets X-Forwarded-For from what it saw, never the client\'s claim');
    assert.equal(headers['x-custom'], 'kept');
    for (const name of ['x-auth-email', 'x-auth-user', 'x-auth-groups', 'x-postern-jwt-assertion']) {
      assert.equal(headers[name], undefined, `${name} must not reach the upstream`);
    }
  });

  test('a streamed response arrives chunk by chunk (first chunk before the last is sent)', async () => {
    const finishedBefore = upstream.streamsFinished;
    const res = await httpsRequest({ port: server.port, ca: server.caPem, host: 'app.localhost', path: '/stream' });
    assert.equal(res.statusCode, 200);
    const iterator = res[Symbol.asyncIterator]();
    let received = '';
    while (!received.includes('first\n')) {
      const next = await withTimeout(iterator.next(), 10_000, 'the first chunk');
      assert.ok(!next.done, 'stream ended before the first chunk');
      received += String(next.value);
    }
    assert.equal(upstream.streamsFinished, finishedBefore, 'the upstream has not sent its last chunk yet');
    assert.ok(!received.includes('last'));
    upstream.releaseStreams();
    for (let next = await iterator.next(); !next.done; next = await iterator.next()) received += String(next.value);
    assert.equal(received, 'first\nlast\n');
  });

  test('WebSocket echo through the socket (text and 1 MiB binary), upgrade headers sanitized', async () => {
    const ws = new WebSocket(`wss://app.localhost:${server.port}/ws`, {
      ca: server.caPem, lookup: loopbackLookup, headers: { 'x-auth-email': 'mallory@evil.example' }, perMessageDeflate: false,
    } as ClientOptions);
    try {
      const messages: { data: RawData; isBinary: boolean }[] = [];
      ws.on('message', (data, isBinary) => messages.push({ data, isBinary }));
      await withTimeout(new Promise((resolve, reject) => ws.once('open', resolve).once('error', reject)), 10_000, 'WebSocket open');
      ws.send('hello through postern');
      const blob = Buffer.alloc(MiB, 7).fill('postern', 0, 7);
      ws.send(blob);
      await waitFor(() => messages.length >= 2, { timeoutMs: 10_000, what: 'two echoed messages' });
      assert.equal(messages[0]!.isBinary, false);
      assert.equal(String(messages[0]!.data), 'hello through postern');
      assert.equal(messages[1]!.isBinary, true);
      assert.ok(Buffer.from(messages[1]!.data as Buffer).equals(blob), 'binary echo intact');
      const upgrade = [...upstream.seen].reverse().find((r) => r.method === 'UPGRADE');
      assert.ok(upgrade, 'the upstream saw the upgrade');
      assert.equal(upgrade.headers['x-auth-email'], undefined);
      assert.equal(upgrade.headers['x-forwarded-for'], '127.0.0.1');
      assert.equal(upgrade.headers.host, `app.localhost:${server.port}`);
    } finally {
      ws.terminate();
    }
  });

  test('100 MiB upload arrives intact (sha256 at the upstream)', async () => {
    const size = 100 * MiB;
    const res = await httpsFetch({
      port: server.port, ca: server.caPem, host: 'app.localhost', path: '/sha256', method: 'POST',
      headers: { 'content-type': 'application/octet-stream', 'content-length': String(size) }, body: patternStream(size),
    });
    assert.equal(res.status, 200, res.text);
    assert.deepEqual(res.json(), { sha256: patternSha256(size), bytes: size });
  });

  test('100 MiB download arrives intact (sha256 at the client)', async () => {
    const size = 100 * MiB;
    const res = await httpsRequest({ port: server.port, ca: server.caPem, host: 'app.localhost', path: `/bytes?n=${size}` });
    assert.equal(res.statusCode, 200);
    assert.equal(res.headers['content-length'], String(size));
    const hash = createHash('sha256');
    let bytes = 0;
    for await (const chunk of res) {
      bytes += (chunk as Buffer).length;
      hash.update(chunk as Buffer);
    }
    assert.equal(bytes, size);
    assert.equal(hash.digest('hex'), patternSha256(size));
  });

  test('error answers: 404 unknown socket, 503 no connector, 502 upstream refused, each with postern-error', async () => {
    const cases = [
      { name: 'does-not-exist', status: 404, code: 'socket_not_found' },
      { name: 'nobody', status: 503, code: 'connector_offline' },
      { name: 'refused', status: 502, code: 'upstream_unreachable' },
    ];
    for (const { name, status, code } of cases) {
      const plain = await socketRequest(name, '/');
      assert.equal(plain.status, status, `${name}: ${plain.text}`);
      assert.equal(plain.headers['postern-error'], code);
      assert.match(plain.text, new RegExp(`\\(${code}\\)`));
      const json = await socketRequest(name, '/', { headers: { accept: 'application/json' } });
      assert.equal(json.status, status);
      assert.match(String(json.headers['content-type']), /^application\/problem\+json/);
      assert.equal(json.json<{ code: string; status: number }>().code, code);
      const html = await curl(['-H', 'Accept: text/html', '-o', '/dev/null', '-w', '%{http_code} %header{postern-error}', `https://${name}.localhost:${server.port}/`], { caFile: server.caFile });
      // curl 7.84+ knows %header{}; older ones print it literally, so only the status is compared then.
      assert.match(html.stdout, new RegExp(`^${status}( ${code}|.*)$`));
    }
  });

  test('a socket deleted while its connector serves it answers 404 at once, and is routed again when re-created bound to it', async () => {
    assert.equal((await socketRequest('refused', '/')).status, 502);
    assert.equal((await server.cli(['socket', 'delete', 'refused'])).code, 0);
    const gone = await socketRequest('refused', '/');
    assert.equal(gone.status, 404);
    assert.equal(gone.headers['postern-error'], 'socket_not_found');
    const recreated = await server.cli(['socket', 'create', '--name', 'refused', '--type', 'http', '--connector', connector.id]);
    assert.equal(recreated.code, 0, recreated.stderr);
    await waitFor(async () => (await socketRequest('refused', '/')).headers['postern-error'] === 'upstream_unreachable', { timeoutMs: 5_000, what: 'the re-created socket to be routed to the connector again' });
  });

  test('`socket ls --json` shows the served socket online and the unserved one offline', async () => {
    const result = await server.cli(['socket', 'ls', '--json']);
    assert.equal(result.code, 0, result.stderr);
    const sockets = JSON.parse(result.stdout) as { name: string; online: boolean; url: string }[];
    const byName = new Map(sockets.map((s) => [s.name, s]));
    assert.equal(byName.get('app')?.online, true);
    assert.equal(byName.get('app')?.url, `https://app.localhost:${server.port}/`);
    assert.equal(byName.get('nobody')?.online, false);
  });

  test('the connector keeps two tunnels, listed by the API and `connector ls`', async () => {
    const result = await waitFor(async () => {
      const ls = await server.cli(['connector', 'ls', '--json']);
      const mine = (JSON.parse(ls.stdout) as { id: string; tunnels: { transport: string }[] }[]).find((c) => c.id === connector.id);
      return mine && mine.tunnels.length === 2 ? mine : undefined;
    }, { timeoutMs: 15_000, what: 'two tunnels for the connector' });
    assert.deepEqual(result.tunnels.map((t) => t.transport), ['tls', 'tls']);
  });

  test('`postern connect --port` publishes a local port in one command and prints the URL', async () => {
    const oneLiner = await startConnector(['connect', '--port', String(upstream.port), '--name', 'oneliner'], server.env);
    await oneLiner.process.waitForOutput(new RegExp(`^  oneliner: https://oneliner\\.localhost:${server.port}/$`, 'm'), { timeoutMs: 5_000 });
    assert.match(oneLiner.logs(), /created socket oneliner \(http\)/);
    const result = await curl([`https://oneliner.localhost:${server.port}/via-connect`], { caFile: server.caFile });
    assert.equal(result.code, 0, result.stderr);
    assert.equal((JSON.parse(result.stdout) as Echo).url, '/via-connect');
    const exit = await oneLiner.stop('SIGTERM');
    assert.equal(exit.code, 0, `connect exits cleanly on SIGTERM\n${oneLiner.process.tail()}`);
    await waitFor(async () => (await socketRequest('oneliner', '/')).status === 503, { timeoutMs: 10_000, what: 'oneliner to go offline' });
  });
});
