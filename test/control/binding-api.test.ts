// The API's binding edits: connector references by id or unique name, replace vs add/remove,
// and the bound connectors a socket lists.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { boundConnectors, nextBinding, resolveConnector } from '../../src/control/binding-api.js';
import { isPosternError } from '../../src/errors.js';
import type { ConnectorRecord, SocketRecord } from '../../src/store/types.js';

const at = '2024-01-01T00:00:00.000Z';
const connector = (id: string, name: string, extra: Partial<ConnectorRecord> = {}): ConnectorRecord => ({
  id, name, certSerial: null, certNotAfter: null, lastSeenAt: null, revokedAt: null, socketTags: null, createdAt: at, ...extra,
});
const all = [
  connector('conn_a', 'office'),
  connector('conn_b', 'laptop'),
  connector('conn_c', 'twin'),
  connector('conn_d', 'twin'),
  connector('conn_e', 'old', { revokedAt: at }),
  connector('conn_f', 'old'),
  connector('conn_g', 'prod', { socketTags: { env: 'prod' } }),
];

test('resolveConnector: an id, or the name of exactly one connector that is not revoked', () => {
  assert.equal(resolveConnector('conn_b', all).id, 'conn_b');
  assert.equal(resolveConnector('office', all).id, 'conn_a');
  assert.equal(resolveConnector('old', all).id, 'conn_f', 'revoked namesakes do not count');
  assert.equal(resolveConnector('conn_e', all).id, 'conn_e', 'an id names even a revoked connector');
  assert.throws(() => resolveConnector('twin', all), (err) => isPosternError(err, 'conflict') && /conn_c, conn_d/.test(err.message));
  assert.throws(() => resolveConnector('nobody', all), (err) => isPosternError(err, 'not_found'));
});

test('nextBinding: replace, add, remove; nothing asked leaves the list alone', () => {
  assert.equal(nextBinding(['conn_a'], {}, all), undefined);
  assert.deepEqual(nextBinding(['conn_a'], { connectors: ['laptop', 'conn_b'] }, all), ['conn_b']);
  assert.deepEqual(nextBinding(['conn_a'], { connectors: [] }, all), []);
  assert.deepEqual(nextBinding(['conn_a'], { add_connectors: ['laptop', 'office'] }, all), ['conn_a', 'conn_b']);
  assert.deepEqual(nextBinding(['conn_a', 'conn_b'], { remove_connectors: ['office'] }, all), ['conn_b']);
  assert.deepEqual(nextBinding(['conn_a'], { add_connectors: ['laptop'], remove_connectors: ['conn_a'] }, all), ['conn_b']);
  assert.throws(() => nextBinding([], { connectors: [], add_connectors: ['office'] }, all), (err) => isPosternError(err, 'bad_request'));
  assert.throws(() => nextBinding([], { add_connectors: ['nobody'] }, all), (err) => isPosternError(err, 'not_found'));
});

test('boundConnectors: direct and tag bindings, revoked connectors left out', () => {
  const socket: SocketRecord = {
    id: 'sock_1', name: 'web', type: 'http', auth: { cloudauth: false, allowedEmailDomains: [], allowedEmailAddresses: [] }, upstream: null,
    description: '', tags: { env: 'prod' }, connectors: ['conn_a', 'conn_e'], rawPaths: false, recordInput: false, upstreamHostKey: null, database: null, createdAt: at, updatedAt: at,
  };
  assert.deepEqual(boundConnectors(socket, all), [
    { id: 'conn_a', name: 'office', binding: 'direct' },
    { id: 'conn_g', name: 'prod', binding: 'tags' },
  ]);
});
