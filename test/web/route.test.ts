import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { buildPath, firstMatch, localPath, matchPath } from '../../web/src/lib/route.js';

describe('dashboard routes', () => {
  it('matches literal and :name parts, decoding the params', () => {
    assert.deepEqual(matchPath('/recordings/:id', '/recordings/rec%2F1'), { id: 'rec/1' });
    assert.deepEqual(matchPath('/sockets', '/sockets/'), {});
    assert.equal(matchPath('/sockets', '/sockets/x'), undefined);
    assert.equal(matchPath('/recordings/:id', '/recordings/%E0%A4%A'), undefined, 'a malformed escape matches nothing');
  });

  it('takes the first pattern that matches', () => {
    assert.deepEqual(firstMatch(['/audit', '/recordings/:id', '/recordings'], '/recordings'), { pattern: '/recordings', params: {} });
    assert.equal(firstMatch(['/audit'], '/nope'), undefined);
  });

  it('builds paths with encoded params', () => {
    assert.equal(buildPath('/recordings/:id', { id: 'a b/c' }), '/recordings/a%20b%2Fc');
  });

  it('navigates only to same-origin paths', () => {
    for (const evil of ['https://evil.example/', '//evil.example/x', '/\\evil.example', 'javascript:alert(1)', '', null, undefined]) assert.equal(localPath(evil), '/', String(evil));
    assert.equal(localPath('/sessions?user=a'), '/sessions?user=a');
  });
});
