// Path globs and the request path as matched.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { compilePathGlobs, requestPath } from '../../src/policy/glob.js';

test('globs: * within a segment, ** across, trailing /* as the prefix and below, literals escaped', () => {
  const cases: [string, string[], string[]][] = [
    ['/', ['/'], ['/x', '']],
    ['/a/*', ['/a', '/a/', '/a/b', '/a/b/c'], ['/ab', '/b/a']],
    ['/a/*/c', ['/a/b/c', '/a//c'.replace('//', '/x/')], ['/a/b/x/c', '/a/c/d']],
    ['/a/**/c', ['/a/c', '/a/b/c', '/a/b/x/c'], ['/a/bc', '/a/b/c/d']],
    ['/**', ['/', '/a', '/a/b'], []],
    ['/v*.json', ['/v1.json', '/v.json'], ['/v1xjson', '/v1/x.json']],
    ['/a.b+(c)', ['/a.b+(c)'], ['/aXb+(c)', '/a.bb(c)']],
    ['//a//*', ['/a/b'], ['/b']],
  ];
  for (const [glob, yes, no] of cases) {
    const re = compilePathGlobs([glob]);
    for (const p of yes) assert.ok(re.test(p), `${glob} should match ${p}`);
    for (const p of no) assert.ok(!re.test(p), `${glob} should not match ${p}`);
  }
  const any = compilePathGlobs(['/x', '/y/*']);
  assert.ok(any.test('/x') && any.test('/y/z') && !any.test('/z'));
});

test('requestPath: query and fragment cut, // collapsed, ambiguous paths flagged', () => {
  assert.deepEqual(requestPath('/a//b?c=//d#e'), { path: '/a/b', ambiguous: false });
  assert.deepEqual(requestPath('/a#x?y'), { path: '/a', ambiguous: false });
  for (const p of ['/a/../b', '/a/./b', '/a/..', '/.', '/a/%2E%2e/b', '/a/.%2e/b', '/a%2fb', '/a%5Cb', '/a\\b', 'a/b', '', '*']) {
    assert.equal(requestPath(p).ambiguous, true, p);
  }
  for (const p of ['/.well-known/x', '/a/..b', '/a/b..', '/...', '/a.b/c']) assert.equal(requestPath(p).ambiguous, false, p);
});
