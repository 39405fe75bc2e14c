// Schema migrations, provided in code to Kysely's Migrator. One schema for both dialects;
// the only difference is how the change log's revision column auto-increments.

import { Migrator } from 'kysely';
import type { Kysely, Migration, MigrationProvider } from 'kysely';
import { PosternError, errorMessage } from '../errors.js';
import type { StoreDialect } from './schema.js';

function initialSchema(dialect: StoreDialect): Migration {
  return {
    async up(db: Kysely<any>): Promise<void> {
      await db.schema
        .createTable('sockets')
        .addColumn('id', 'text', (c) => c.primaryKey())
        .addColumn('name', 'text', (c) => c.notNull().unique())
        .addColumn('type', 'text', (c) => c.notNull())
        .addColumn('upstream', 'text')
        .addColumn('description', 'text', (c) => c.notNull().defaultTo(''))
        .addColumn('tags', 'text', (c) => c.notNull().defaultTo('{}'))
        .addColumn('created_at', 'text', (c) => c.notNull())
        .addColumn('updated_at', 'text', (c) => c.notNull())
        .execute();

      await db.schema
        .createTable('connectors')
        .addColumn('id', 'text', (c) => c.primaryKey())
        .addColumn('name', 'text', (c) => c.notNull())
        .addColumn('cert_serial', 'text')
        .addColumn('cert_not_after', 'text')
        .addColumn('last_seen_at', 'text')
        .addColumn('revoked_at', 'text')
        .addColumn('created_at', 'text', (c) => c.notNull())
        .execute();
      await db.schema.createIndex('connectors_name_idx').on('connectors').column('name').execute();

      await db.schema
        .createTable('join_tokens')
        .addColumn('id', 'text', (c) => c.primaryKey())
        .addColumn('token_hash', 'text', (c) => c.notNull().unique())
        .addColumn('connector_name', 'text', (c) => c.notNull())
        .addColumn('expires_at', 'text', (c) => c.notNull())
        .addColumn('used_at', 'text')
        .addColumn('connector_id', 'text')
        .addColumn('created_at', 'text', (c) => c.notNull())
        .execute();

      await db.schema
        .createTable('api_tokens')
        .addColumn('id', 'text', (c) => c.primaryKey())
        .addColumn('name', 'text', (c) => c.notNull())
        .addColumn('token_hash', 'text', (c) => c.notNull().unique())
        .addColumn('role', 'text', (c) => c.notNull())
        .addColumn('created_at', 'text', (c) => c.notNull())
        .addColumn('last_used_at', 'text')
        .addColumn('revoked_at', 'text')
        .execute();

      await db.schema
        .createTable('secrets')
        .addColumn('name', 'text', (c) => c.primaryKey())
        .addColumn('value', 'text', (c) => c.notNull())
        .execute();

      // AUTOINCREMENT (not just INTEGER PRIMARY KEY) so SQLite never reuses a revision.
      const changes = db.schema.createTable('changes');
      await (dialect === 'postgres'
        ? changes.addColumn('revision', 'bigserial', (c) => c.primaryKey())
        : changes.addColumn('revision', 'integer', (c) => c.primaryKey().autoIncrement())
      )
        .addColumn('entity', 'text', (c) => c.notNull())
        .addColumn('entity_id', 'text', (c) => c.notNull())
        .addColumn('op', 'text', (c) => c.notNull())
        .addColumn('at', 'text', (c) => c.notNull())
        .execute();
    },

    async down(db: Kysely<any>): Promise<void> {
      for (const table of ['changes', 'secrets', 'api_tokens', 'join_tokens', 'connectors', 'sockets']) {
        await db.schema.dropTable(table).ifExists().execute();
      }
    },
  };
}

/** The ordered migrations for a dialect; names sort in application order. */
export function storeMigrations(dialect: StoreDialect): Record<string, Migration> {
  return {
    '0001_initial': initialSchema(dialect),
  };
}

class InCodeMigrationProvider implements MigrationProvider {
  constructor(private readonly migrations: Record<string, Migration>) {}

  async getMigrations(): Promise<Record<string, Migration>> {
    return this.migrations;
  }
}

/** Applies every pending migration; throws PosternError('store_unavailable') on failure. */
export async function migrateToLatest(db: Kysely<any>, dialect: StoreDialect): Promise<void> {
  const migrator = new Migrator({ db, provider: new InCodeMigrationProvider(storeMigrations(dialect)) });
  const { error, results } = await migrator.migrateToLatest();
  if (error !== undefined) {
    const failed = results?.find((r) => r.status === 'Error')?.migrationName;
    const where = failed === undefined ? '' : ` (${failed})`;
    throw new PosternError('store_unavailable', `store migration failed${where}: ${errorMessage(error)}`, {
      cause: error,
    });
  }
}
