// Migration 0014: workload agents, their one-time join tokens and the JWT issuers an admin
// trusts. Kept beside migrations.ts (which lists it in order). Same schema on both dialects.

import type { Kysely, Migration } from 'kysely';

export function agentsSchema(): Migration {
  return {
    async up(db: Kysely<any>): Promise<void> {
      await db.schema
        .createTable('agents')
        .addColumn('id', 'text', (c) => c.primaryKey())
        .addColumn('name', 'text', (c) => c.notNull())
        .addColumn('method', 'text', (c) => c.notNull())
        .addColumn('attestation_key', 'text', (c) => c.notNull().unique())
        .addColumn('attributes', 'text', (c) => c.notNull().defaultTo('{}'))
        .addColumn('self_asserted', 'text', (c) => c.notNull().defaultTo('{}'))
        .addColumn('spiffe_id', 'text', (c) => c.notNull())
        .addColumn('cert_serial', 'text')
        .addColumn('cert_not_after', 'text')
        .addColumn('last_attested_at', 'text', (c) => c.notNull())
        .addColumn('revoked_at', 'text')
        .addColumn('created_at', 'text', (c) => c.notNull())
        .execute();
      // What every node loads at start: the revoked ones only.
      await db.schema.createIndex('agents_revoked_idx').on('agents').columns(['revoked_at', 'id']).execute();

      await db.schema
        .createTable('agent_join_tokens')
        .addColumn('id', 'text', (c) => c.primaryKey())
        .addColumn('token_hash', 'text', (c) => c.notNull().unique())
        .addColumn('agent_name', 'text', (c) => c.notNull())
        .addColumn('attributes', 'text', (c) => c.notNull().defaultTo('{}'))
        .addColumn('trust_facts', 'integer', (c) => c.notNull().defaultTo(0))
        .addColumn('expires_at', 'text', (c) => c.notNull())
        .addColumn('used_at', 'text')
        .addColumn('agent_id', 'text')
        .addColumn('created_at', 'text', (c) => c.notNull())
        .execute();

      await db.schema
        .createTable('agent_issuers')
        .addColumn('id', 'text', (c) => c.primaryKey())
        .addColumn('name', 'text', (c) => c.notNull().unique())
        .addColumn('issuer', 'text', (c) => c.notNull())
        .addColumn('audience', 'text', (c) => c.notNull())
        .addColumn('jwks_url', 'text', (c) => c.notNull())
        .addColumn('claims', 'text', (c) => c.notNull().defaultTo('{}'))
        .addColumn('algorithms', 'text', (c) => c.notNull())
        .addColumn('max_skew_seconds', 'integer', (c) => c.notNull())
        .addColumn('trust_facts', 'integer', (c) => c.notNull().defaultTo(0))
        .addColumn('created_at', 'text', (c) => c.notNull())
        .execute();
    },
    async down(db: Kysely<any>): Promise<void> {
      await db.schema.dropTable('agent_issuers').execute();
      await db.schema.dropTable('agent_join_tokens').execute();
      await db.schema.dropTable('agents').execute();
    },
  };
}
