// The socket-host session cookie: Set-Cookie attributes, secrets stored hashed, and a Cookie
// parser that stays bounded and prototype-safe under hostile headers.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { isPosternError } from '../../src/errors.js';
import {
  SESSION_COOKIE_NAME,
  clearSessionCookie,
  createSessionSecret,
  hashSessionSecret,
  parseCookies,
  readSessionCookie,
  serializeSessionCookie,
} from '../../src/identity/session-cookie.js';
import { hashToken } from '../../src/identity/tokens.js';

const SECRET = 'A'.repeat(43);

function attributes(setCookie: string): string[] {
  return setCookie.split('; ').slice(1).sort();
}

test('cookie: __Host- name, Secure, HttpOnly, SameSite=Lax, Path=/, no Domain', () => {
  assert.equal(SESSION_COOKIE_NAME, '__Host-postern_session');
  const set = serializeSessionCookie(SECRET, { maxAgeSeconds: 3600 });
  assert.ok(set.startsWith(`__Host-postern_session=${SECRET}; `));
  assert.deepEqual(attributes(set), ['HttpOnly', 'Max-Age=3600', 'Path=/', 'SameSite=Lax', 'Secure']);
  assert.doesNotMatch(set, /domain=/i);
  const clear = clearSessionCookie();
  assert.ok(clear.startsWith('__Host-postern_session=; '));
  assert.deepEqual(attributes(clear), ['HttpOnly', 'Max-Age=0', 'Path=/', 'SameSite=Lax', 'Secure']);
});

test('cookie: refuses values and lifetimes that could inject attributes', () => {
  for (const value of ['', 'x', `${SECRET}; Domain=evil.example`, `${SECRET.slice(1)}\n`, 'A'.repeat(44), `${SECRET.slice(1)}=`]) {
    assert.throws(() => serializeSessionCookie(value, { maxAgeSeconds: 60 }), (err) => isPosternError(err, 'bad_request'), value);
  }
  for (const maxAgeSeconds of [0, -1, 1.5, Number.NaN, Number.POSITIVE_INFINITY]) {
    assert.throws(() => serializeSessionCookie(SECRET, { maxAgeSeconds }), (err) => isPosternError(err, 'bad_request'));
  }
});

test('secret: 32 random bytes base64url, stored as hashToken', () => {
  const a = createSessionSecret();
  const b = createSessionSecret();
  assert.match(a.value, /^[A-Za-z0-9_-]{43}$/);
  assert.notEqual(a.value, b.value);
  assert.equal(a.hash, hashToken(a.value));
  assert.equal(hashSessionSecret(a.value), a.hash);
  const fixed = createSessionSecret((size) => Buffer.alloc(size, 0xff));
  assert.equal(fixed.value, Buffer.alloc(32, 0xff).toString('base64url'));
  assert.equal(readSessionCookie({ cookie: serializeSessionCookie(a.value, { maxAgeSeconds: 60 }).split(';')[0] }), a.value);
});

test('parse: ordinary headers, quotes, spacing, first pair wins, several headers', () => {
  const cookies = parseCookies(' theme=dark;sid="abc" ; empty=; ;noequals; theme=light;  spaced = v ');
  assert.deepEqual([...cookies], [['theme', 'dark'], ['sid', 'abc'], ['empty', ''], ['spaced', 'v']]);
  assert.deepEqual([...parseCookies(['a=1', 'b=2; a=3'])], [['a', '1'], ['b', '2']]);
  assert.equal(parseCookies(undefined).size, 0);
  assert.equal(parseCookies('').size, 0);
  assert.equal(parseCookies('a=%41').get('a'), '%41', 'no percent-decoding');
});

test('parse: hostile names never reach a prototype and bad octets are skipped', () => {
  const cookies = parseCookies('__proto__=x; constructor=y; toString=z; hasOwnProperty=w; a b=1; c=d"e; e=f\\g; ok=1');
  assert.equal(cookies.get('__proto__'), 'x');
  assert.equal(cookies.get('constructor'), 'y');
  assert.equal(({} as Record<string, unknown>).x, undefined);
  assert.equal(Object.prototype.hasOwnProperty.call(Object.prototype, 'x'), false);
  assert.equal(cookies.has('a b'), false);
  assert.equal(cookies.has('c'), false);
  assert.equal(cookies.has('e'), false);
  assert.equal(cookies.get('ok'), '1');
  assert.equal(parseCookies('x=\u0000; y=\u00e9; z=a\r\nb').size, 0);
});

test('parse: header bombs stay bounded in time and result size', () => {
  const many = Array.from({ length: 100_000 }, (_, i) => `c${i}=v`).join('; ');
  const started = process.hrtime.bigint();
  const cookies = parseCookies(many);
  assert.ok(cookies.size <= 200);
  assert.equal(parseCookies(many, { maxPairs: 5, maxLength: 1_000_000 }).size, 5);
  assert.equal(parseCookies(';'.repeat(1_000_000)).size, 0);
  assert.equal(parseCookies('='.repeat(1_000_000)).size, 0);
  assert.equal(parseCookies(`big=${'v'.repeat(1_000_000)}`).size, 0, 'a pair cut by the length limit is dropped');
  assert.deepEqual([...parseCookies(`a=1; b=2; c=${'v'.repeat(100)}`, { maxLength: 20 })], [['a', '1'], ['b', '2']]);
  const ms = Number(process.hrtime.bigint() - started) / 1e6;
  assert.ok(ms < 1_000, `took ${ms.toFixed(0)} ms`);
});

test('read: the session secret only when present and shaped like one', () => {
  assert.equal(readSessionCookie({ cookie: `theme=dark; __Host-postern_session=${SECRET}` }), SECRET);
  assert.equal(readSessionCookie({ cookie: [`a=1`, `__Host-postern_session=${SECRET}`] }), SECRET);
  assert.equal(readSessionCookie({}), undefined);
  assert.equal(readSessionCookie({ cookie: '__Host-postern_session=short' }), undefined);
  assert.equal(readSessionCookie({ cookie: `__host-postern_session=${SECRET}` }), undefined, 'names are case-sensitive');
  assert.equal(readSessionCookie({ cookie: `postern_session=${SECRET}` }), undefined);
  const flood = `${Array.from({ length: 300 }, (_, i) => `c${i}=v`).join('; ')}; __Host-postern_session=${SECRET}`;
  assert.equal(readSessionCookie({ cookie: flood }), undefined, 'past the pair limit');
});
