// Upgrade smuggling: a request that asks for a WebSocket, to an upstream that answers it like
// any request and keeps reading, must not carry a second, undecided request behind it. Bytes
// flow raw only after a real 101; request targets other than origin-form never get that far.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import WebSocket from 'ws';
import { loopbackLookup } from '../helpers/https.js';
import { waitForAudit } from '../helpers/processes.js';
import { startUpstream } from '../helpers/upstream.js';
import type { Upstream } from '../helpers/upstream.js';
import { writeConnectorConfig, startConnector } from '../helpers/processes.js';
import { tempDir, withTimeout } from '../helpers/util.js';
import { head, startEdgeFixture, statuses, USER } from './edge-fixture.js';
import type { EdgeFixture } from './edge-fixture.js';

const WS_HEADERS = ['Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==', 'Sec-WebSocket-Version: 13'];

describe('security: upgrade smuggling', () => {
  let f: EdgeFixture;
  let wsUpstream: Upstream;

  before(async () => {
    f = await startEdgeFixture();
    // A real WebSocket upstream for the socket `live` (the fixture's Node upstream never switches).
    wsUpstream = await startUpstream();
    const created = await f.server.cli(['socket', 'create', '--name', 'live', '--cloudauth']);
    assert.equal(created.code, 0, created.stderr);
    const token = (await f.server.cli(['connector', 'token', 'create', '--name', 'ws', '--socket', 'live'])).stdout.trim();
    const config = await writeConnectorConfig((await tempDir()).path, 'ws.yaml', { server: f.server.url, token, sockets: [{ name: 'live', type: 'http', upstream: wsUpstream.url }] });
    await startConnector(['connector', 'start', '--config', config], f.server.env);
  });

  after(async () => {
    await f?.close();
    await wsUpstream?.close();
  });

  const smuggled = (socket: string) => head(f, socket, 'POST /admin/x HTTP/1.1', ['X-Auth-Email: admin@corp.com', 'Content-Length: 0']);
  const reachedAdmin = () => f.node.seen.filter((r) => r.url.includes('admin'));

  for (const variant of [
    { name: 'in one write', gapMs: 0, upgrade: ['Connection: Upgrade', 'Upgrade: websocket'] },
    { name: 'written after the head', gapMs: 300, upgrade: ['Connection: Upgrade', 'Upgrade: websocket'] },
    { name: 'with mixed-case tokens', gapMs: 300, upgrade: ['Connection: keep-alive, UPGRADE', 'Upgrade: WebSocket'] },
  ]) {
    for (const socket of ['app', 'pub']) {
      test(`a request behind a refused upgrade never reaches the upstream (${socket}, ${variant.name})`, async () => {
        const cookie = socket === 'app' ? [`Cookie: ${await f.cookieFor('app')}`] : [];
        const before = f.node.seen.length;
        const first = head(f, socket, 'GET / HTTP/1.1', [...cookie, ...variant.upgrade, ...WS_HEADERS]);
        const parts = variant.gapMs === 0 ? [first + smuggled(socket)] : [first, smuggled(socket)];
        const result = await f.raw(socket, parts, { gapMs: variant.gapMs });
        assert.deepEqual(statuses(result.text), [200], result.text);
        assert.ok(result.closed, 'the edge closes the connection after relaying a refused upgrade');
        assert.deepEqual(reachedAdmin(), []);
        const got = f.node.seen.slice(before);
        assert.equal(got.length, 1, JSON.stringify(got.map((r) => r.url)));
        assert.equal(got[0]!.url, '/');
        if (socket === 'app') assert.equal(got[0]!.headers['x-auth-email'], USER);
      });
    }
  }

  test('a refused upgrade is logged as an HTTP request, not as a WebSocket', async () => {
    const cookie = await f.cookieFor('app');
    await f.raw('app', [head(f, 'app', 'GET /logged HTTP/1.1', [`Cookie: ${cookie}`, 'Connection: Upgrade', 'Upgrade: websocket', ...WS_HEADERS])]);
    const event = await waitForAudit(f.server, ['--type', 'http.request', '--socket', 'app'], (e) => (e.details as { path?: string }).path === '/logged', 'http.request for /logged');
    assert.equal((event.details as { status?: number }).status, 200);
  });

  for (const upgrade of ['h2c', 'websocket, h2c', 'TLS/1.2', 'tcp']) {
    test(`an upgrade to "${upgrade}" is refused before it reaches the upstream`, async () => {
      const before = f.node.seen.length;
      const result = await f.raw('pub', [head(f, 'pub', 'GET / HTTP/1.1', ['Connection: Upgrade', `Upgrade: ${upgrade}`, 'HTTP2-Settings: AAMAAABkAARAAAAAAAIAAAAA'])]);
      assert.deepEqual(statuses(result.text), [400], result.text);
      assert.match(result.text, /upgrade_not_supported/);
      assert.equal(f.node.seen.length, before);
    });
  }

  for (const [name, requestLine] of [
    ['absolute-form', 'GET http://pub.localhost/admin/x HTTP/1.1'],
    ['absolute-form to another host', 'GET http://127.0.0.1:1/ HTTP/1.1'],
    ['asterisk-form', 'OPTIONS * HTTP/1.1'],
    ['authority-form', 'GET pub.localhost:443 HTTP/1.1'],
  ] as const) {
    for (const upgrade of [false, true]) {
      test(`a ${name} target is refused before the decision${upgrade ? ' (upgrade)' : ''}`, async () => {
        const before = f.node.seen.length;
        const extra = upgrade ? ['Connection: Upgrade', 'Upgrade: websocket', ...WS_HEADERS] : [];
        const result = await f.raw('pub', [head(f, 'pub', requestLine, extra)]);
        assert.deepEqual(statuses(result.text), [400], result.text);
        // Node's own parser already refuses some of these (bad_request); the rest are Postern's.
        assert.match(result.text, /request_target_invalid|bad_request/);
        assert.equal(f.node.seen.length, before);
      });
    }
  }

  test('CONNECT is never tunnelled', async () => {
    const before = f.node.seen.length;
    const result = await f.raw('pub', [head(f, 'pub', 'CONNECT 127.0.0.1:22 HTTP/1.1') + 'SSH-2.0-x\r\n']);
    assert.ok(result.closed);
    assert.doesNotMatch(result.text, /^HTTP\/1\.1 200/m);
    assert.equal(f.node.seen.length, before);
  });

  test('a real WebSocket still works, and its head bytes count in the audit', async () => {
    const cookie = await f.cookieFor('live');
    const ws = new WebSocket(`wss://live.localhost:${f.server.port}/ws`, { ca: f.server.caPem, lookup: loopbackLookup, headers: { cookie } });
    await withTimeout(new Promise<void>((resolve, reject) => {
      ws.once('open', () => ws.send('hello'));
      ws.once('message', (data) => (String(data) === 'hello' ? resolve() : reject(new Error(`echo: ${String(data)}`))));
      ws.once('error', reject);
    }), 10_000, 'websocket echo');
    ws.close();
    const closed = await waitForAudit(f.server, ['--type', 'connection.close', '--socket', 'live'], () => true, 'connection.close of the WebSocket');
    const bytesUp = (closed.details as { bytesUp?: number }).bytesUp ?? 0;
    assert.ok(bytesUp > 150 + cookie.length, `the upgrade request head and the frame count as bytes up: ${JSON.stringify(closed.details)}`);
  });
});
