// The pure parts of `postgres` sockets: what the front door makes of a connection's first bytes,
// and the startup the edge sends upstream (client GUCs dropped, read-only pinned).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { postgresEncryptionRequest } from '../../src/edge/front-door.js';
import { upstreamStartup } from '../../src/edge/postgres/startup.js';
import { encodeStartup } from '../../src/pgwire/wire.js';

test('the front door tells an SSLRequest, a GSSENCRequest, a cleartext startup and a ClientHello apart', () => {
  const ssl = encodeStartup({ type: 'SSLRequest' });
  assert.equal(postgresEncryptionRequest(ssl), 'ssl');
  assert.equal(postgresEncryptionRequest(Buffer.concat([ssl, Buffer.from([0x16, 3, 1])])), 'ssl');
  assert.equal(postgresEncryptionRequest(encodeStartup({ type: 'GSSENCRequest' })), 'gssenc');
  assert.equal(postgresEncryptionRequest(ssl.subarray(0, 5)), 'incomplete');
  assert.equal(postgresEncryptionRequest(encodeStartup({ type: 'StartupMessage', major: 3, minor: 0, parameters: { user: 'ana', database: 'orders' } })), 'cleartext');
  assert.equal(postgresEncryptionRequest(Buffer.from([0x16, 3, 1, 0, 0xc8, 1, 0, 0])), undefined);
  assert.equal(postgresEncryptionRequest(Buffer.from('00000009ffffffff00', 'hex')), undefined);
});

test('the upstream startup keeps the database and harmless parameters, drops the client\'s user, options and GUCs, pins read-only, names the decided role', () => {
  const client = { user: 'mallory', database: 'orders', application_name: 'psql', client_encoding: 'UTF8', options: '-c role=admin -c postern.role=admin', default_transaction_read_only: 'off', search_path: 'evil' };
  const readOnly = upstreamStartup(client, 'orders', true);
  assert.deepEqual(readOnly.type === 'StartupMessage' && readOnly.parameters, { database: 'orders', application_name: 'psql', client_encoding: 'UTF8', default_transaction_read_only: 'on' });
  const writer = upstreamStartup(client, 'orders', false);
  assert.deepEqual(writer.type === 'StartupMessage' && writer.parameters, { database: 'orders', application_name: 'psql', client_encoding: 'UTF8' });
  const mapped = upstreamStartup(client, 'orders', true, 'readonly');
  assert.deepEqual(mapped.type === 'StartupMessage' && mapped.parameters, { user: 'readonly', database: 'orders', application_name: 'psql', client_encoding: 'UTF8', default_transaction_read_only: 'on' });
});
