// routeHost/hostOnly: which part of Postern a Host header addresses.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { hostOnly, isIpLiteral, routeHost } from '../../src/edge/routing.js';

const domain = 'postern.test';

test('hostOnly: strips ports, IPv6 brackets, a trailing dot; lower-cases; trims', () => {
  const cases: [string, string][] = [
    ['postern.test', 'postern.test'],
    ['postern.test:8443', 'postern.test'],
    ['Web.Postern.TEST:443', 'web.postern.test'],
    ['web.postern.test.', 'web.postern.test'],
    ['web.postern.test.:8443', 'web.postern.test'],
    ['  web.postern.test  ', 'web.postern.test'],
    ['127.0.0.1:8443', '127.0.0.1'],
    ['[::1]:8443', '::1'],
    ['[::1]', '::1'],
    ['[2001:DB8::1]:443', '2001:db8::1'],
    ['::1', '::1'],
    ['fe80::1', 'fe80::1'],
  ];
  for (const [input, expected] of cases) assert.equal(hostOnly(input), expected, input);
});

test('routeHost: no host, the domain itself and IP literals go to the control plane', () => {
  for (const host of [undefined, '', 'postern.test', 'POSTERN.test:8443', 'postern.test.', '127.0.0.1', '10.0.0.1:8443', '[::1]:8443', '::1']) {
    assert.deepEqual(routeHost(host, domain), { kind: 'control' }, String(host));
  }
});

test('routeHost: <label>.<domain> is a socket, whatever the case, port or trailing dot', () => {
  const cases: [string, string][] = [
    ['web.postern.test', 'web'],
    ['WEB.Postern.Test', 'web'],
    ['web.postern.test:8443', 'web'],
    ['web.postern.test.', 'web'],
    ['my-app-2.postern.test', 'my-app-2'],
    ['0.postern.test', '0'],
    [`${'a'.repeat(63)}.postern.test`, 'a'.repeat(63)],
  ];
  for (const [host, name] of cases) assert.deepEqual(routeHost(host, domain), { kind: 'socket', name }, host);
});

test('routeHost: invalid labels, nested names and other domains are unknown', () => {
  const cases: [string, string][] = [
    ['a.b.postern.test', 'a.b.postern.test'],
    ['-web.postern.test', '-web.postern.test'],
    ['web-.postern.test', 'web-.postern.test'],
    ['web_1.postern.test', 'web_1.postern.test'],
    [`${'a'.repeat(64)}.postern.test`, `${'a'.repeat(64)}.postern.test`],
    ['.postern.test', '.postern.test'],
    ['evilpostern.test', 'evilpostern.test'],
    ['postern.test.evil.com', 'postern.test.evil.com'],
    ['Other.Example:80', 'other.example'],
  ];
  for (const [host, normalised] of cases) assert.deepEqual(routeHost(host, domain), { kind: 'unknown', host: normalised }, host);
});

test('routeHost: works for a multi-label domain and for localhost', () => {
  assert.deepEqual(routeHost('app.edge.example.com', 'edge.example.com'), { kind: 'socket', name: 'app' });
  assert.deepEqual(routeHost('edge.example.com', 'edge.example.com'), { kind: 'control' });
  assert.deepEqual(routeHost('a.localhost:8443', 'localhost'), { kind: 'socket', name: 'a' });
  assert.deepEqual(routeHost('localhost:8443', 'localhost'), { kind: 'control' });
});

test('isIpLiteral: dotted quads and anything with a colon', () => {
  assert.equal(isIpLiteral('192.168.1.10'), true);
  assert.equal(isIpLiteral('::1'), true);
  assert.equal(isIpLiteral('1.2.3'), false);
  assert.equal(isIpLiteral('web.postern.test'), false);
  assert.equal(isIpLiteral('1.2.3.4.example'), false);
});
