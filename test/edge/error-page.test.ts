// sendProblem/sendRawProblem: the answer follows Accept (HTML, problem+json, text) and always
// carries the stable code in `postern-error`. Served by a real HTTP server on 127.0.0.1.
import assert from 'node:assert/strict';
import { once } from 'node:events';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { PassThrough } from 'node:stream';
import { after, before, test } from 'node:test';
import { problemTitle, sendProblem, sendRawProblem } from '../../src/edge/error-page.js';
import type { EdgeProblem } from '../../src/edge/error-page.js';

const offline: EdgeProblem = { status: 503, code: 'connector_offline', detail: 'no connector for "web" <b>&</b>' };
let problem: EdgeProblem = offline;
const server = http.createServer((req, res) => sendProblem(req, res, problem));
let port = 0;

before(async () => {
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  port = (server.address() as AddressInfo).port;
});
after(() => server.close());

async function get(accept?: string): Promise<{ status: number; headers: http.IncomingHttpHeaders; body: string }> {
  const req = http.get({ host: '127.0.0.1', port, path: '/', headers: accept === undefined ? {} : { accept } });
  const [res] = (await once(req, 'response')) as [http.IncomingMessage];
  let body = '';
  for await (const chunk of res) body += String(chunk);
  return { status: res.statusCode ?? 0, headers: res.headers, body };
}

test('error page: browsers get escaped HTML with the code', async () => {
  problem = offline;
  const res = await get('text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8');
  assert.equal(res.status, 503);
  assert.equal(res.headers['content-type'], 'text/html; charset=utf-8');
  assert.equal(res.headers['postern-error'], 'connector_offline');
  assert.equal(res.headers['cache-control'], 'no-store');
  assert.equal(Number(res.headers['content-length']), Buffer.byteLength(res.body));
  assert.match(res.body, /^<!doctype html>/);
  assert.match(res.body, /<h1>The service is offline<\/h1>/);
  assert.match(res.body, /no connector for &#34;web&#34; &#60;b&#62;&#38;&#60;\/b&#62;/);
  assert.doesNotMatch(res.body, /<b>&<\/b>/);
  assert.match(res.body, /<code>connector_offline<\/code>/);
});

test('error page: API clients get problem+json', async () => {
  problem = offline;
  for (const accept of ['application/json', 'application/problem+json', 'application/json, text/plain']) {
    const res = await get(accept);
    assert.equal(res.status, 503);
    assert.equal(res.headers['content-type'], 'application/problem+json');
    assert.equal(res.headers['postern-error'], 'connector_offline');
    assert.deepEqual(JSON.parse(res.body), {
      type: 'https://postern.dev/errors/connector_offline', title: 'The service is offline', status: 503, detail: offline.detail, code: 'connector_offline',
    });
  }
});

test('error page: curl and clients without Accept get one line of text', async () => {
  problem = { status: 502, code: 'upstream_unreachable', detail: 'connection refused by 127.0.0.1:3000' };
  for (const accept of [undefined, '*/*', 'text/plain']) {
    const res = await get(accept);
    assert.equal(res.status, 502);
    assert.equal(res.headers['content-type'], 'text/plain; charset=utf-8');
    assert.equal(res.headers['postern-error'], 'upstream_unreachable');
    assert.equal(res.body, '502 The service did not answer: connection refused by 127.0.0.1:3000 (upstream_unreachable)\n');
  }
});

test('problemTitle: known codes have their own title, others fall back to the status text', () => {
  assert.equal(problemTitle({ status: 404, code: 'socket_not_found', detail: '' }), 'No such socket');
  assert.equal(problemTitle({ status: 504, code: 'upstream_timeout', detail: '' }), 'The service took too long');
  assert.equal(problemTitle({ status: 403, code: 'forbidden', detail: '' }), 'Forbidden');
  assert.equal(problemTitle({ status: 599, code: 'internal', detail: '' }), 'Error');
});

test('sendProblem: once headers are sent it destroys the response instead', () => {
  let destroyed = false;
  let wrote = false;
  const res = { headersSent: true, destroy: () => (destroyed = true), writeHead: () => (wrote = true), end: () => (wrote = true) };
  sendProblem({ headers: { accept: 'text/html' } } as unknown as http.IncomingMessage, res as unknown as http.ServerResponse, offline);
  assert.equal(destroyed, true);
  assert.equal(wrote, false);
});

test('sendRawProblem: a minimal HTTP/1.1 answer on a raw socket, then end', async () => {
  const socket = new PassThrough();
  let raw = '';
  socket.setEncoding('latin1').on('data', (chunk: string) => (raw += chunk));
  sendRawProblem(socket, { status: 404, code: 'socket_not_found', detail: 'no socket "x"' });
  await once(socket, 'end');
  const [head, body] = raw.split('\r\n\r\n');
  const lines = head!.split('\r\n');
  assert.equal(lines[0], 'HTTP/1.1 404 Not Found');
  assert.ok(lines.includes('postern-error: socket_not_found'));
  assert.ok(lines.includes('connection: close'));
  assert.ok(lines.includes(`content-length: ${Buffer.byteLength(body!)}`));
  assert.equal(body, '404 No such socket: no socket "x" (socket_not_found)\n');
});
