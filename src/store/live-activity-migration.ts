// Migration 0017_live_activity: what a live connection is doing (a database session's current
// statement, since when), reported by its edge with the rest of the row. Listed in migrations.ts;
// same schema on both dialects.

import type { Kysely, Migration } from 'kysely';

export function liveActivitySchema(): Migration {
  return {
    async up(db: Kysely<any>): Promise<void> {
      await db.schema.alterTable('live_connections').addColumn('activity', 'text', (c) => c.notNull().defaultTo('')).execute();
      await db.schema.alterTable('live_connections').addColumn('activity_since', 'text').execute();
    },
    async down(db: Kysely<any>): Promise<void> {
      await db.schema.alterTable('live_connections').dropColumn('activity_since').execute();
      await db.schema.alterTable('live_connections').dropColumn('activity').execute();
    },
  };
}
