// Brings a database to migration 0001 only and stores a socket the old way, so a test can
// check what later migrations (0002_identity, 0006_token_scopes_pkce) do to existing data.

import { Migrator } from 'kysely';
import type { Kysely, Migration } from 'kysely';
import { storeMigrations } from '../../src/store/index.js';
import type { StoreDialect } from '../../src/store/index.js';

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
  await db
    .insertInto('api_tokens')
    .values({ id: 'tok_old', name: 'old-service', token_hash: 'old-hash', role: 'service', created_at: at, last_used_at: null, revoked_at: null })
    .execute();
}
