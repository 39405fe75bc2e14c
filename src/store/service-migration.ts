// Migration 0015_agent_services: the services agents declare. Listed in migrations.ts; same
// schema on both dialects.

import type { Kysely, Migration } from 'kysely';

export function agentServicesSchema(): Migration {
  return {
    async up(db: Kysely<any>): Promise<void> {
      await db.schema
        .createTable('agent_services')
        .addColumn('id', 'text', (c) => c.primaryKey())
        .addColumn('namespace', 'text', (c) => c.notNull())
        .addColumn('name', 'text', (c) => c.notNull())
        .addColumn('spiffe_id', 'text', (c) => c.notNull())
        .addColumn('agent_id', 'text', (c) => c.notNull())
        .addColumn('port', 'integer')
        .addColumn('process', 'text')
        .addColumn('labels', 'text', (c) => c.notNull().defaultTo('{}'))
        .addColumn('updated_at', 'text', (c) => c.notNull())
        .execute();
    },
    async down(db: Kysely<any>): Promise<void> {
      await db.schema.dropTable('agent_services').execute();
    },
  };
}
