// Brings a database to migration 0001 only and stores a socket, two connectors (one revoked)
// and a service token the old way, so a test can check what later migrations do to existing
// data when the store opens it (0002_identity: socket auth; 0006_socket_bindings: bindings;
// 0009_token_scopes_pkce: scopes; 0011_ssh_sockets: input recording and host key pins).

import { Migrator } from 'kysely';
import type { Kysely, Migration } from 'kysely';
import assert from 'node:assert/strict';
import { storeMigrations } from '../../src/store/index.js';
import type { Store, StoreDialect } from '../../src/store/index.js';

/** `schema`: PostgreSQL only, where Kysely keeps its migration tables (as the store does). */
export async function prepareAt0001(db: Kysely<any>, dialect: StoreDialect, schema?: string): Promise<void> {
  const initial = storeMigrations(dialect)['0001_initial'] as Migration;
  const migrator = new Migrator({
    db,
    provider: { getMigrations: async () => ({ '0001_initial': initial }) },
    ...(schema === undefined ? {} : { migrationTableSchema: schema }),
  });
  const { error } = await migrator.migrateToLatest();
  if (error !== undefined) throw error;
  const at = '2024-01-01T00:00:00.000Z';
  await db
    .insertInto('sockets')
    .values({ id: 'sock_old', name: 'old', type: 'http', upstream: null, description: '', tags: '{}', created_at: at, updated_at: at })
    .execute();
  const connector = { cert_serial: null, cert_not_after: null, last_seen_at: null, created_at: at };
  await db
    .insertInto('connectors')
    .values([
      { ...connector, id: 'conn_live', name: 'live', revoked_at: null },
      { ...connector, id: 'conn_revoked', name: 'revoked', revoked_at: at },
    ])
    .execute();
  await db
    .insertInto('join_tokens')
    .values({ id: 'jt_old', token_hash: 'old-token', connector_name: 'later', expires_at: '2999-01-01T00:00:00.000Z', used_at: null, connector_id: null, created_at: at })
    .execute();
  await db
    .insertInto('api_tokens')
    .values({ id: 'tok_old', name: 'old-service', token_hash: 'old-hash', role: 'service', created_at: at, last_used_at: null, revoked_at: null })
    .execute();
}

/** What 0006_socket_bindings must leave: the old socket served by the connector not revoked; the unused token binding nothing. */
export async function assertUpgradedBindings(store: Store): Promise<void> {
  assert.deepEqual((await store.sockets.get('old'))?.connectors, ['conn_live']);
  assert.equal((await store.connectors.get('conn_live'))?.socketTags, null);
  const token = (await store.joinTokens.list()).find((t) => t.id === 'jt_old');
  assert.deepEqual([token?.sockets, token?.socketTags], [[], null]);
  assert.deepEqual((await store.sockets.create({ name: 'new', type: 'http' })).connectors, [], 'sockets created afterwards start unbound');
}

/** What 0011_ssh_sockets must leave: the old socket records output only and has no pinned host key. */
export async function assertUpgradedSshFields(store: Store): Promise<void> {
  const old = await store.sockets.get('old');
  assert.deepEqual([old?.recordInput, old?.upstreamHostKey], [false, null]);
}
