// Migration 0012: an index for counting decided audit events over time (the dashboard's
// overview chart and "denies in the last hour"). The range on `at` plus the decision and type
// columns in the index let both dialects count from the index alone, without reading rows.

import type { Kysely, Migration } from 'kysely';

export function auditTimeDecisionIndex(): Migration {
  return {
    async up(db: Kysely<any>): Promise<void> {
      await db.schema.createIndex('audit_events_at_decision_type_idx').on('audit_events').columns(['at', 'decision', 'type']).execute();
    },
    async down(db: Kysely<any>): Promise<void> {
      await db.schema.dropIndex('audit_events_at_decision_type_idx').ifExists().execute();
    },
  };
}
