// Migration 0013_audit_search: what the dashboard's audit page needs to stay index-backed at
// 10 million rows. Newest-first pages per type and per decision get (column, id) indexes like
// the actor and socket ones from 0005. Free-text search gets a full-text index over reason,
// actor, socket and details: on SQLite an external-content FTS5 table kept by triggers (the text
// is not stored twice), on PostgreSQL a GIN index over the same text as a tsvector. Both
// tokenise on letters and digits, so a search means the same on either backend.

import { sql } from 'kysely';
import type { Kysely, Migration } from 'kysely';
import type { StoreDialect } from './schema.js';

/** The searchable text of a row on PostgreSQL; queries must repeat it exactly for the index to apply. */
export const PG_AUDIT_TSVECTOR = sql`to_tsvector('simple'::regconfig, regexp_replace(reason || ' ' || actor || ' ' || socket || ' ' || details, '[^[:alnum:]]+', ' ', 'g'))`;

const ftsColumns = 'reason, actor, socket, details';

export function auditSearchSchema(dialect: StoreDialect): Migration {
  return {
    async up(db: Kysely<any>): Promise<void> {
      await db.schema.createIndex('audit_events_type_idx').on('audit_events').columns(['type', 'id']).execute();
      await db.schema.createIndex('audit_events_decision_idx').on('audit_events').columns(['decision', 'id']).execute();
      if (dialect === 'postgres') {
        await sql`create index audit_events_text_idx on audit_events using gin (${PG_AUDIT_TSVECTOR})`.execute(db);
        return;
      }
      await sql.raw(`create virtual table audit_events_fts using fts5(${ftsColumns}, content='audit_events', content_rowid='id')`).execute(db);
      // The trail is append-only; the update trigger only keeps the index honest if a row is ever repaired.
      await sql.raw(`create trigger audit_events_fts_insert after insert on audit_events begin
        insert into audit_events_fts(rowid, ${ftsColumns}) values (new.id, new.reason, new.actor, new.socket, new.details); end`).execute(db);
      await sql.raw(`create trigger audit_events_fts_delete after delete on audit_events begin
        insert into audit_events_fts(audit_events_fts, rowid, ${ftsColumns}) values ('delete', old.id, old.reason, old.actor, old.socket, old.details); end`).execute(db);
      await sql.raw(`create trigger audit_events_fts_update after update on audit_events begin
        insert into audit_events_fts(audit_events_fts, rowid, ${ftsColumns}) values ('delete', old.id, old.reason, old.actor, old.socket, old.details);
        insert into audit_events_fts(rowid, ${ftsColumns}) values (new.id, new.reason, new.actor, new.socket, new.details); end`).execute(db);
      await sql.raw(`insert into audit_events_fts(audit_events_fts) values ('rebuild')`).execute(db);
    },

    async down(db: Kysely<any>): Promise<void> {
      if (dialect === 'postgres') {
        await db.schema.dropIndex('audit_events_text_idx').ifExists().execute();
      } else {
        for (const trigger of ['audit_events_fts_update', 'audit_events_fts_delete', 'audit_events_fts_insert']) await sql.raw(`drop trigger if exists ${trigger}`).execute(db);
        await sql.raw('drop table if exists audit_events_fts').execute(db);
      }
      await db.schema.dropIndex('audit_events_decision_idx').ifExists().execute();
      await db.schema.dropIndex('audit_events_type_idx').ifExists().execute();
    },
  };
}
