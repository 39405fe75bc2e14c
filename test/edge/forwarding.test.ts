// Header hygiene on the way upstream: identity and internal headers out whatever their
// spelling, hop-by-hop out (including Connection-listed ones), X-Forwarded-* from the edge,
// Postern's cookies kept from upstreams both ways, safe raw response heads.
import assert from 'node:assert/strict';
import type { IncomingHttpHeaders } from 'node:http';
import { test } from 'node:test';
import { IDENTITY_HEADERS, clientResponseHeaders, headerKey, isReservedHeader, responseHead, upstreamHeaders, withoutPosternCookies } from '../../src/edge/forwarding.js';
import { stripHopByHop } from '../../src/tunnel/headers.js';

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

test('upstreamHeaders: identity and forwarding headers spelled with _ or mixed case never pass', () => {
  const spelled: IncomingHttpHeaders = {
    x_auth_email: 'admin@example.com', 'x-auth_email': 'admin@example.com', 'x_auth-user': 'admin', x_auth_groups: 'admins',
    'x_postern_jwt_assertion': 'forged', x_forwarded_for: '1.2.3.4', 'x-forwarded_host': 'evil', x_real_ip: '1.2.3.4', postern_socket: 'other', 'x-kept_header': 'yes',
  };
  const out = upstreamHeaders(spelled, facts);
  assert.deepEqual(Object.keys(out).sort(), ['x-forwarded-for', 'x-forwarded-host', 'x-forwarded-proto', 'x-kept_header', 'x-real-ip']);
  assert.equal(out['x-forwarded-for'], '203.0.113.7');
  for (const name of ['X_AUTH_EMAIL', 'X-Auth_Email', 'x-AUTH-groups', 'Postern-Kind', 'FORWARDED']) assert.ok(isReservedHeader(name), name);
  assert.ok(!isReservedHeader('x-auth-emailx'));
  assert.equal(headerKey('X_Auth_Email'), 'x-auth-email');
});

test('upstreamHeaders: Postern\'s own cookies never reach the upstream', () => {
  const out = upstreamHeaders({ cookie: '__Host-postern_session=secret; app=1; __host-POSTERN_csrf=x;  other=2 ; postern_x=y; __Secure-postern_sso_a=b' }, facts);
  assert.equal(out.cookie, 'app=1; other=2');
  assert.equal(upstreamHeaders({ cookie: '__Host-postern_session=secret' }, facts).cookie, undefined);
  assert.equal(withoutPosternCookies('a=1;b=2'), 'a=1; b=2');
  assert.equal(withoutPosternCookies(' ; '), undefined);
});

test('clientResponseHeaders: an upstream cannot set or clear Postern\'s cookies', () => {
  const out = clientResponseHeaders({ 'set-cookie': ['__Host-postern_session=evil; Path=/; Secure', 'app=1', '__HOST-postern_session=; Max-Age=0'], connection: 'close', 'content-type': 'text/plain' });
  assert.deepEqual(out, { 'set-cookie': ['app=1'], 'content-type': 'text/plain' });
  assert.deepEqual(clientResponseHeaders({ 'set-cookie': ['__Host-postern_session=evil'] }), {});
});

test('upstreamHeaders: does not modify its input', () => {
  const copy = structuredClone(incoming);
  upstreamHeaders(incoming, facts);
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

test('responseHead: serializes an HTTP/1.1 head with repeated headers', () => {
  const head = responseHead(101, { 'sec-websocket-accept': 'abc', 'x-multi': ['a', 'b'] }, 'connection: Upgrade\r\n');
  assert.equal(head, 'HTTP/1.1 101 Switching Protocols\r\nconnection: Upgrade\r\nsec-websocket-accept: abc\r\nx-multi: a\r\nx-multi: b\r\n\r\n');
});

test('responseHead: values carrying CR or LF are dropped, not injected', () => {
  const head = responseHead(200, {
    'x-evil': 'a\r\nset-cookie: __Host-postern_session=x',
    'x-lf': 'b\nx-auth-user: root',
    'x-cr': 'c\rd',
    'x-list': ['ok', 'bad\r\nx-auth-groups: admins'],
  });
  assert.equal(head, 'HTTP/1.1 200 OK\r\nx-list: ok\r\n\r\n');
  assert.equal(head.split('\r\n\r\n').length, 2, 'exactly one end of head');
});
