// Migration 0010: terminal recordings and their chunks. Kept beside migrations.ts (which lists
// it in order) so that file stays short. Chunks are binary: BLOB on SQLite, BYTEA on PostgreSQL.

import type { Kysely, Migration } from 'kysely';
import type { StoreDialect } from './schema.js';

export function recordingsSchema(dialect: StoreDialect): Migration {
  return {
    async up(db: Kysely<any>): Promise<void> {
      await db.schema
        .createTable('recordings')
        .addColumn('id', 'text', (c) => c.primaryKey())
        .addColumn('connection_id', 'text', (c) => c.notNull())
        .addColumn('session_id', 'text', (c) => c.notNull().defaultTo(''))
        .addColumn('socket', 'text', (c) => c.notNull())
        .addColumn('email', 'text', (c) => c.notNull())
        .addColumn('login', 'text', (c) => c.notNull())
        .addColumn('kind', 'text', (c) => c.notNull())
        .addColumn('command', 'text', (c) => c.notNull().defaultTo(''))
        .addColumn('title', 'text', (c) => c.notNull().defaultTo(''))
        .addColumn('width', 'integer', (c) => c.notNull())
        .addColumn('height', 'integer', (c) => c.notNull())
        .addColumn('term', 'text', (c) => c.notNull().defaultTo(''))
        .addColumn('started_at', 'text', (c) => c.notNull())
        .addColumn('ended_at', 'text')
        .addColumn('exit_status', 'integer')
        .addColumn('bytes', 'bigint', (c) => c.notNull().defaultTo(0))
        .addColumn('truncated', 'integer', (c) => c.notNull().defaultTo(0))
        .addColumn('end_reason', 'text', (c) => c.notNull().defaultTo(''))
        .addColumn('updated_at', 'text', (c) => c.notNull())
        .execute();
      // Listing is newest first, by user, by socket or overall; `sessions watch` looks up by connection.
      await db.schema.createIndex('recordings_started_idx').on('recordings').columns(['started_at', 'id']).execute();
      await db.schema.createIndex('recordings_email_idx').on('recordings').columns(['email', 'started_at']).execute();
      await db.schema.createIndex('recordings_socket_idx').on('recordings').columns(['socket', 'started_at']).execute();
      await db.schema.createIndex('recordings_connection_idx').on('recordings').column('connection_id').execute();
      await db.schema
        .createTable('recording_chunks')
        .addColumn('recording_id', 'text', (c) => c.notNull())
        .addColumn('seq', 'integer', (c) => c.notNull())
        .addColumn('data', dialect === 'postgres' ? 'bytea' : 'blob', (c) => c.notNull())
        .addColumn('created_at', 'text', (c) => c.notNull())
        .addPrimaryKeyConstraint('recording_chunks_pkey', ['recording_id', 'seq'])
        .execute();
    },

    async down(db: Kysely<any>): Promise<void> {
      await db.schema.dropTable('recording_chunks').ifExists().execute();
      await db.schema.dropTable('recordings').ifExists().execute();
    },
  };
}
