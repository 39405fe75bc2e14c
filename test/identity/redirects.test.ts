// return_to: a list of open-redirect attempts that must all fall back, the forms that pass,
// and the one-time handoff code.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { isPosternError } from '../../src/errors.js';
import { createHandoffCode, hashHandoffCode, safeReturnTo } from '../../src/identity/redirects.js';
import { hashToken } from '../../src/identity/tokens.js';

const FALLBACK = '/';
const options = {
  fallback: FALLBACK,
  allowedHosts: (host: string) => host === 'postern.localhost:8443' || /^[a-z0-9-]+\.localhost:8443$/.test(host),
};
const check = (value: unknown): string => safeReturnTo(value, options);

test('return_to: allowed absolute https URLs and relative paths pass, normalized', () => {
  assert.equal(check('https://grafana.localhost:8443/d/abc?x=1#top'), 'https://grafana.localhost:8443/d/abc?x=1#top');
  assert.equal(check('HTTPS://Grafana.LOCALHOST:8443'), 'https://grafana.localhost:8443/');
  assert.equal(check('https://postern.localhost:8443/app/sessions'), 'https://postern.localhost:8443/app/sessions');
  assert.equal(check('https://joe:secret@grafana.localhost:8443/x'), 'https://grafana.localhost:8443/x', 'credentials stripped');
  assert.equal(check('/app/sessions?tab=live#x'), '/app/sessions?tab=live#x');
  assert.equal(check('/a/./b/../c'), '/a/c');
  assert.equal(check('/'), '/');
  assert.equal(check('/%2F%2Fevil.example'), '/%2F%2Fevil.example', 'encoded slashes stay a path');
});

test('return_to: open-redirect attempts all fall back', () => {
  const attempts: unknown[] = [
    'https://evil.example/',
    'https://evil.example:8443/',
    'http://grafana.localhost:8443/',
    'https://grafana.localhost/',
    'https://grafana.localhost:9999/',
    'https://grafana.localhost:8443.evil.example/',
    'https://grafana.localhost:8443@evil.example/',
    'https://evil.example#@grafana.localhost:8443',
    'https://evil.example\\@grafana.localhost:8443',
    'https://grafana.localhost:8443\\@evil.example',
    'https:evil.example',
    'https:/evil.example',
    'https:///evil.example',
    '//evil.example',
    '//evil.example/path',
    '///evil.example',
    '/\\evil.example',
    '\\\\evil.example',
    '\\/evil.example',
    '/.//evil.example',
    '/a/..//evil.example',
    ' /path',
    '/path ',
    '\t//evil.example',
    '/\t/evil.example',
    '/\n/evil.example',
    '/\r\n/evil.example',
    '/\u0000/evil.example',
    '\u200b/path',
    '/p\u00e1th',
    'https://gr\u0430fana.localhost:8443/',
    'javascript:alert(1)',
    'JaVaScRiPt:alert(1)',
    'javascript://grafana.localhost:8443/%0aalert(1)',
    'data:text/html,<script>alert(1)</script>',
    'vbscript:msgbox(1)',
    'ftp://grafana.localhost:8443/',
    'wss://grafana.localhost:8443/',
    'evil.example',
    'grafana.localhost:8443/x',
    '.',
    '',
    `/${'a'.repeat(2048)}`,
    `https://grafana.localhost:8443/${'a'.repeat(2048)}`,
    'https://[::1]:8443/',
    'https://127.0.0.1:8443/',
    'https://%65vil.example/',
    undefined,
    null,
    42,
    ['/ok'],
    { toString: () => '/ok' },
  ];
  for (const attempt of attempts) {
    assert.equal(check(attempt), FALLBACK, JSON.stringify(attempt));
  }
});

test('return_to: the caller decides hosts; the fallback is returned as given', () => {
  const none = { allowedHosts: () => false, fallback: 'https://postern.localhost:8443/' };
  assert.equal(safeReturnTo('https://grafana.localhost:8443/', none), none.fallback);
  assert.equal(safeReturnTo('/still-fine', none), '/still-fine', 'relative paths do not ask allowedHosts');
  const seen: string[] = [];
  safeReturnTo('https://WIKI.localhost/x', { allowedHosts: (host) => (seen.push(host), false), fallback: '/' });
  safeReturnTo('https://wiki.localhost:443/x', { allowedHosts: (host) => (seen.push(host), false), fallback: '/' });
  assert.deepEqual(seen, ['wiki.localhost', 'wiki.localhost'], 'lower-case, default port omitted');
});

test('handoff code: random, stored as hashToken, malformed codes refused', () => {
  const a = createHandoffCode();
  const b = createHandoffCode();
  assert.match(a.code, /^[A-Za-z0-9_-]{43}$/);
  assert.notEqual(a.code, b.code);
  assert.equal(a.hash, hashToken(a.code));
  assert.equal(hashHandoffCode(a.code), a.hash);
  assert.equal(createHandoffCode((size) => Buffer.alloc(size, 1)).code, Buffer.alloc(32, 1).toString('base64url'));
  for (const bad of ['', 'short', `${a.code}x`, `${a.code.slice(1)}=`, 'x'.repeat(10_000)]) {
    assert.throws(() => hashHandoffCode(bad), (err) => isPosternError(err, 'token_invalid'));
  }
});
