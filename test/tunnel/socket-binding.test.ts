// Which announcements a connector may make: bound by name, by a tag selector, or not at all;
// unknown sockets, type mismatches (http and https alike; tls and ssh each only as themselves)
// and revoked connectors are refused with their own codes.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { bindingOf, decideAnnouncements, selectorMatches } from '../../src/tunnel/socket-binding.js';
import type { BindableConnector, BindableSocket } from '../../src/tunnel/socket-binding.js';

const socket = (name: string, extra: Partial<BindableSocket> = {}): BindableSocket => ({ name, type: 'http', tags: {}, connectors: [], ...extra });
const connector = (id: string, extra: Partial<BindableConnector> = {}): BindableConnector => ({ id, revokedAt: null, socketTags: null, ...extra });

test('selectorMatches: every pair must be among the tags; empty or absent selectors match nothing', () => {
  assert.equal(selectorMatches({ env: 'prod' }, { env: 'prod', team: 'ops' }), true);
  assert.equal(selectorMatches({ env: 'prod', team: 'ops' }, { env: 'prod', team: 'ops' }), true);
  assert.equal(selectorMatches({ env: 'prod', team: 'ops' }, { env: 'prod' }), false);
  assert.equal(selectorMatches({ env: 'prod' }, { env: 'production' }), false);
  assert.equal(selectorMatches({ env: 'prod' }, {}), false);
  assert.equal(selectorMatches({}, { env: 'prod' }), false, 'an empty selector is not "everything"');
  assert.equal(selectorMatches(null, { env: 'prod' }), false);
  assert.equal(selectorMatches({ toString: 'x' }, {}), false, 'inherited properties are not tags');
  assert.equal(selectorMatches({ env: '' }, {}), false, 'a missing tag does not equal an empty value');
});

test('bindingOf: direct by id, by tags, none; a revoked connector is bound to nothing', () => {
  const web = socket('web', { connectors: ['c1'], tags: { env: 'prod' } });
  assert.equal(bindingOf(web, connector('c1')), 'direct');
  assert.equal(bindingOf(web, connector('c2', { socketTags: { env: 'prod' } })), 'tags');
  assert.equal(bindingOf(web, connector('c1', { socketTags: { env: 'prod' } })), 'direct', 'direct wins');
  assert.equal(bindingOf(web, connector('c3')), undefined);
  assert.equal(bindingOf(web, connector('c3', { socketTags: { env: 'stage' } })), undefined);
  assert.equal(bindingOf(web, connector('c1', { revokedAt: '2024-01-01T00:00:00.000Z' })), undefined);
  assert.equal(bindingOf(web, connector('C1')), undefined, 'ids compare exactly');
});

test('decideAnnouncements: accepts bound sockets in order, refuses the rest with a code', () => {
  const sockets = new Map([
    ['web', socket('web', { connectors: ['c1'] })],
    ['db', socket('db', { type: 'tls', tags: { env: 'prod' } })],
    ['secret', socket('secret', { connectors: ['other'] })],
    ['api', socket('api', { type: 'https', connectors: ['c1'] })],
  ]);
  const decision = decideAnnouncements('c1', connector('c1', { socketTags: { env: 'prod' } }), [
    { name: 'web', type: 'http' },
    { name: 'secret', type: 'http' },
    { name: 'db', type: 'tls' },
    { name: 'ghost', type: 'http' },
    { name: 'api', type: 'tls' },
    { name: 'api', type: 'http' },
  ], (name) => sockets.get(name));
  assert.deepEqual(decision.accepted, ['web', 'db', 'api']);
  assert.deepEqual(decision.rejected.map((r) => [r.name, r.code]), [['secret', 'not-bound'], ['ghost', 'unknown-socket'], ['api', 'type-mismatch']]);
  assert.match(decision.rejected[0]!.reason, /socket "secret" is not bound to connector c1 \(bind it with `postern socket update secret --add-connector c1`\)/);
});

test('decideAnnouncements: an unknown or revoked connector serves nothing', () => {
  const sockets = new Map([['web', socket('web', { connectors: ['c1'] })]]);
  for (const who of [undefined, connector('c1', { revokedAt: '2024-01-01T00:00:00.000Z' })]) {
    const decision = decideAnnouncements('c1', who, [{ name: 'web', type: 'http' }], (name) => sockets.get(name));
    assert.deepEqual(decision.accepted, []);
    assert.deepEqual(decision.rejected.map((r) => r.code), ['connector-revoked']);
  }
});

test('decideAnnouncements: an ssh socket is served only as ssh; tls only as tls', () => {
  const sockets = new Map([
    ['prod', socket('prod', { type: 'ssh', connectors: ['c1'] })],
    ['db', socket('db', { type: 'tls', connectors: ['c1'] })],
  ]);
  const decision = decideAnnouncements('c1', connector('c1'), [
    { name: 'prod', type: 'ssh' },
    { name: 'prod', type: 'tls' },
    { name: 'prod', type: 'http' },
    { name: 'db', type: 'ssh' },
    { name: 'db', type: 'tls' },
  ], (name) => sockets.get(name));
  assert.deepEqual(decision.accepted, ['prod', 'db']);
  assert.deepEqual(decision.rejected.map((r) => [r.name, r.code]), [['prod', 'type-mismatch'], ['prod', 'type-mismatch'], ['db', 'type-mismatch']]);
  assert.match(decision.rejected[0]!.reason, /socket "prod" is of type ssh, the connector serves it as tls/);
});
