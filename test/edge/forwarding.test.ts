// Header hygiene on the way upstream: identity and internal headers out, hop-by-hop out
// (including Connection-listed ones), X-Forwarded-* from the edge, safe raw request heads.
import assert from 'node:assert/strict';
import type { IncomingHttpHeaders } from 'node:http';
import { test } from 'node:test';
import { IDENTITY_HEADERS, requestHead, upstreamHeaders } from '../../src/edge/forwarding.js';
import { stripHopByHop } from '../../src/edge/headers.js';

const facts = { clientIp: '203.0.113.7', host: 'web.postern.test', proto: 'https' } as const;

const incoming: IncomingHttpHeaders = {
  host: 'web.postern.test',
  'user-agent': 'curl/8',
  accept: '*/*',
  connection: 'keep-alive, X-Secret-Hop',
  'keep-alive': 'timeout=5',
  'x-secret-hop': 'do not forward',
  te: 'trailers',
  trailer: 'x-checksum',
  'transfer-encoding': 'chunked',
  upgrade: 'websocket',
  'proxy-authorization': 'Basic Zm9vOmJhcg==',
  'x-auth-email': 'admin@example.com',
  'x-auth-user': 'admin',
  'x-auth-groups': 'admins',
  'x-postern-jwt-assertion': 'forged.jwt.value',
  'postern-socket': 'other',
  'postern-kind': 'tcp',
  forwarded: 'for=1.2.3.4',
  'x-forwarded-for': '1.2.3.4',
  'x-forwarded-proto': 'http',
  'x-forwarded-host': 'evil.example',
  'x-real-ip': '1.2.3.4',
  'set-cookie': ['a=1', 'b=2'],
  cookie: 'session=abc',
};

test('upstreamHeaders: client identity and internal headers never pass', () => {
  const out = upstreamHeaders(incoming, facts);
  for (const name of IDENTITY_HEADERS) assert.equal(out[name], undefined, name);
  assert.equal(out['postern-socket'], undefined);
  assert.equal(out['postern-kind'], undefined);
  assert.equal(out.forwarded, undefined);
});

test('upstreamHeaders: hop-by-hop and Connection-listed headers are stripped', () => {
  const out = upstreamHeaders(incoming, facts);
  for (const name of ['host', 'connection', 'keep-alive', 'x-secret-hop', 'te', 'trailer', 'transfer-encoding', 'upgrade', 'proxy-authorization']) {
    assert.equal(out[name], undefined, name);
  }
  assert.equal(out['user-agent'], 'curl/8');
  assert.equal(out.cookie, 'session=abc');
  assert.deepEqual(out['set-cookie'], ['a=1', 'b=2']);
});

test('upstreamHeaders: X-Forwarded-* and X-Real-IP come from what the edge saw', () => {
  const out = upstreamHeaders(incoming, facts);
  assert.equal(out['x-forwarded-for'], '203.0.113.7');
  assert.equal(out['x-forwarded-proto'], 'https');
  assert.equal(out['x-forwarded-host'], 'web.postern.test');
  assert.equal(out['x-real-ip'], '203.0.113.7');
  const plain = upstreamHeaders({}, { clientIp: '::1', host: 'a.localhost:8443', proto: 'http' });
  assert.deepEqual(plain, { 'x-forwarded-for': '::1', 'x-forwarded-proto': 'http', 'x-forwarded-host': 'a.localhost:8443', 'x-real-ip': '::1' });
});

test('upstreamHeaders: for upgrades Connection/Upgrade/Host stay, identity and internal still go', () => {
  const out = upstreamHeaders(incoming, facts, true);
  assert.equal(out.connection, 'keep-alive, X-Secret-Hop');
  assert.equal(out.upgrade, 'websocket');
  assert.equal(out.host, 'web.postern.test');
  for (const name of IDENTITY_HEADERS) assert.equal(out[name], undefined, name);
  assert.equal(out['postern-socket'], undefined);
  assert.equal(out.forwarded, undefined);
  assert.equal(out['x-forwarded-for'], '203.0.113.7');
});

test('upstreamHeaders: does not modify its input', () => {
  const copy = structuredClone(incoming);
  upstreamHeaders(incoming, facts);
  upstreamHeaders(incoming, facts, true);
  assert.deepEqual(incoming, copy);
});

test('stripHopByHop: removes the fixed set, Connection-listed names (any case) and pseudo-headers', () => {
  const out = stripHopByHop({
    ':path': '/x', ':authority': 'a', host: 'a', connection: 'close,  X-One ,x-two,,', 'x-one': '1', 'x-two': '2', 'x-three': '3',
    'http2-settings': 'AAA', 'proxy-connection': 'keep-alive', 'proxy-authenticate': 'Basic', 'content-type': 'text/plain', 'x-undefined': undefined,
  });
  assert.deepEqual(out, { 'x-three': '3', 'content-type': 'text/plain' });
  assert.deepEqual(stripHopByHop({ accept: 'text/html' }), { accept: 'text/html' });
});

test('requestHead: serializes an HTTP/1.1 head with repeated headers', () => {
  const head = requestHead('GET', '/chat?room=1', { host: 'web', upgrade: 'websocket', 'x-multi': ['a', 'b'] });
  assert.equal(head.toString('latin1'), 'GET /chat?room=1 HTTP/1.1\r\nhost: web\r\nupgrade: websocket\r\nx-multi: a\r\nx-multi: b\r\n\r\n');
});

test('requestHead: values carrying CR or LF are dropped, not injected', () => {
  const head = requestHead('GET', '/', {
    host: 'web',
    'x-evil': 'a\r\nx-auth-email: admin@example.com',
    'x-lf': 'b\nx-auth-user: root',
    'x-cr': 'c\rd',
    'x-list': ['ok', 'bad\r\nx-auth-groups: admins'],
  }).toString('latin1');
  assert.equal(head, 'GET / HTTP/1.1\r\nhost: web\r\nx-list: ok\r\n\r\n');
  assert.doesNotMatch(head, /x-auth-/);
  assert.equal(head.split('\r\n\r\n').length, 2, 'exactly one end of head');
});
