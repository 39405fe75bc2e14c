// The canonical request target: one spelling per path (unreserved characters decoded, dot
// segments resolved, slashes merged), and refusals for what an upstream could read differently.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { canonicalTarget } from '../../src/policy/index.js';

function canonical(raw: string): string {
  const result = canonicalTarget(raw);
  assert.ok(result.ok, `${raw} was refused: ${result.ok ? '' : result.reason}`);
  return result.target;
}

function refused(raw: string, rawPaths = false): string {
  const result = canonicalTarget(raw, { rawPaths });
  assert.ok(!result.ok, `${raw} was accepted as ${result.ok ? result.target : ''}`);
  return result.code;
}

test('canonicalTarget: one spelling of /admin/x for every way of writing it', () => {
  for (const raw of ['/admin/x', '/%61dmin/x', '/%61%64%6D%69%6E/x', '/admin//x', '//admin/x', '/admin/./x', '/x/../admin/x', '/a/b/../../admin/x', '/%2e/admin/x', '/x/%2E%2E/admin/x', '/../admin/x', '/admin/x/.']) {
    const expected = raw.endsWith('/.') ? '/admin/x/' : '/admin/x';
    assert.equal(canonical(raw), expected, raw);
  }
});

test('canonicalTarget: the query passes as sent, only the path is normalised', () => {
  assert.equal(canonical('/%7Euser/a?x=%2F..%2F&y=/../z'), '/~user/a?x=%2F..%2F&y=/../z');
  assert.equal(canonical('/a?'), '/a?');
  assert.equal(canonical('/'), '/');
});

test('canonicalTarget: other escapes keep their meaning, hex upper-cased', () => {
  assert.equal(canonical('/caf%c3%a9/%3b/%25'), '/caf%C3%A9/%3B/%25');
  assert.equal(canonical('/a%20b'), '/a%20b');
  assert.equal(canonical('/a/..b/.c'), '/a/..b/.c');
});

test('canonicalTarget: only origin-form is served', () => {
  for (const raw of ['http://evil.example/admin', 'https://web.localhost/', '*', 'web.localhost:443', '', 'admin/x']) {
    assert.equal(refused(raw), 'request_target_invalid', raw);
    assert.equal(refused(raw, true), 'request_target_invalid', `${raw} (raw paths)`);
  }
});

test('canonicalTarget: fragments, controls, spaces, non-ASCII and broken escapes are refused even with raw paths', () => {
  for (const raw of ['/x#/../admin/x', '/a#', '/a\x00b', '/a\tb', '/a b', '/a\x7f', '/caf\u00e9', '/a%', '/a%2', '/a%zz', '/a?b=%g1']) {
    assert.equal(refused(raw), 'request_target_invalid', JSON.stringify(raw));
    assert.equal(refused(raw, true), 'request_target_invalid', JSON.stringify(raw));
  }
});

test('canonicalTarget: ambiguous paths are refused unless the socket keeps them raw', () => {
  const kept: Record<string, string> = {
    '/admin%2fx': '/admin%2Fx', '/admin%2Fx': '/admin%2Fx', '/admin\\x': '/admin\\x', '/admin%5cx': '/admin%5Cx', '/admin;/x': '/admin;/x',
    '/admin;jsessionid=1/x': '/admin;jsessionid=1/x', '/admin%00/x': '/admin%00/x', '/a%0d%0aX-Auth-Email:%20x': '/a%0D%0AX-Auth-Email:%20x', '/a%7f': '/a%7F',
  };
  for (const [raw, target] of Object.entries(kept)) {
    assert.equal(refused(raw), 'path_ambiguous', raw);
    const passed = canonicalTarget(raw, { rawPaths: true });
    assert.ok(passed.ok && passed.target === target, `${raw} is kept as ${target} with raw paths, got ${passed.ok ? passed.target : passed.reason}`);
  }
});

test('canonicalTarget: with raw paths everything unambiguous is still normalised', () => {
  const passed = canonicalTarget('/%61dmin/./x//y/../a%2fb;v=1', { rawPaths: true });
  assert.ok(passed.ok);
  assert.equal(passed.target, '/admin/x/a%2Fb;v=1');
});
