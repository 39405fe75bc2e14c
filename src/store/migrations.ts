// Schema migrations, provided in code to Kysely's Migrator. One schema for both dialects;
// the only difference is how the change log's revision column auto-increments.

import { Migrator, sql } from 'kysely';
import type { Kysely, Migration, MigrationProvider } from 'kysely';
import { PosternError, errorMessage } from '../errors.js';
import type { StoreDialect } from './schema.js';
import { recordingsSchema } from './recording-migration.js';
import { auditTimeDecisionIndex } from './audit-time-migration.js';
import { auditSearchSchema } from './audit-search-migration.js';
import { agentsSchema } from './agent-migration.js';
import { agentServicesSchema } from './service-migration.js';
import { liveActivitySchema } from './live-activity-migration.js';

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

/** What a socket created before 0002 allows: no sign-in required (the same as noSocketAuth). */
const defaultSocketAuth = '{"cloudauth":false,"allowedEmailDomains":[],"allowedEmailAddresses":[]}';

/** Users, their sessions, per-socket grants and one-time hand-off codes; socket auth settings. */
function identitySchema(): Migration {
  return {
    async up(db: Kysely<any>): Promise<void> {
      await db.schema
        .alterTable('sockets')
        .addColumn('auth', 'text', (c) => c.notNull().defaultTo(defaultSocketAuth))
        .execute();

      await db.schema
        .createTable('users')
        .addColumn('id', 'text', (c) => c.primaryKey())
        .addColumn('email', 'text', (c) => c.notNull().unique())
        .addColumn('name', 'text', (c) => c.notNull().defaultTo(''))
        .addColumn('groups', 'text', (c) => c.notNull().defaultTo('[]'))
        .addColumn('password_hash', 'text')
        .addColumn('disabled_at', 'text')
        .addColumn('created_at', 'text', (c) => c.notNull())
        .addColumn('updated_at', 'text', (c) => c.notNull())
        .execute();

      await db.schema
        .createTable('sessions')
        .addColumn('id', 'text', (c) => c.primaryKey())
        .addColumn('user_id', 'text', (c) => c.notNull())
        .addColumn('kind', 'text', (c) => c.notNull())
        .addColumn('provider', 'text', (c) => c.notNull())
        .addColumn('client_ip', 'text', (c) => c.notNull())
        .addColumn('user_agent', 'text', (c) => c.notNull())
        .addColumn('secret_hash', 'text', (c) => c.notNull().unique())
        .addColumn('created_at', 'text', (c) => c.notNull())
        .addColumn('last_seen_at', 'text', (c) => c.notNull())
        .addColumn('expires_at', 'text', (c) => c.notNull())
        .addColumn('revoked_at', 'text')
        .execute();
      await db.schema.createIndex('sessions_user_id_idx').on('sessions').column('user_id').execute();

      await db.schema
        .createTable('session_grants')
        .addColumn('id', 'text', (c) => c.primaryKey())
        .addColumn('session_id', 'text', (c) => c.notNull())
        .addColumn('socket', 'text', (c) => c.notNull())
        .addColumn('secret_hash', 'text', (c) => c.notNull().unique())
        .addColumn('created_at', 'text', (c) => c.notNull())
        .execute();
      await db.schema.createIndex('session_grants_session_id_idx').on('session_grants').column('session_id').execute();

      await db.schema
        .createTable('handoff_codes')
        .addColumn('code_hash', 'text', (c) => c.primaryKey())
        .addColumn('session_id', 'text', (c) => c.notNull())
        .addColumn('socket', 'text', (c) => c.notNull())
        .addColumn('return_to', 'text', (c) => c.notNull())
        .addColumn('expires_at', 'text', (c) => c.notNull())
        .addColumn('used_at', 'text')
        .execute();
    },

    async down(db: Kysely<any>): Promise<void> {
      for (const table of ['handoff_codes', 'session_grants', 'sessions', 'users']) {
        await db.schema.dropTable(table).ifExists().execute();
      }
      await db.schema.alterTable('sockets').dropColumn('auth').execute();
    },
  };
}

/** Sign-in sources (OIDC, GitHub, SAML): plain settings as JSON, the secret sealed apart. */
function identityProvidersSchema(): Migration {
  return {
    async up(db: Kysely<any>): Promise<void> {
      await db.schema
        .createTable('identity_providers')
        .addColumn('id', 'text', (c) => c.primaryKey())
        .addColumn('name', 'text', (c) => c.notNull().unique())
        .addColumn('kind', 'text', (c) => c.notNull())
        .addColumn('display_name', 'text', (c) => c.notNull().defaultTo(''))
        .addColumn('config', 'text', (c) => c.notNull().defaultTo('{}'))
        .addColumn('sealed_secret', 'text')
        .addColumn('disabled_at', 'text')
        .addColumn('created_at', 'text', (c) => c.notNull())
        .addColumn('updated_at', 'text', (c) => c.notNull())
        .execute();
    },

    async down(db: Kysely<any>): Promise<void> {
      await db.schema.dropTable('identity_providers').ifExists().execute();
    },
  };
}

/** RFC 8628 device authorizations for `postern login`; a user code is unique among pending ones. */
function deviceAuthorizationsSchema(): Migration {
  return {
    async up(db: Kysely<any>): Promise<void> {
      await db.schema
        .createTable('device_authorizations')
        .addColumn('id', 'text', (c) => c.primaryKey())
        .addColumn('device_code_hash', 'text', (c) => c.notNull().unique())
        .addColumn('user_code', 'text', (c) => c.notNull())
        .addColumn('status', 'text', (c) => c.notNull())
        .addColumn('user_id', 'text')
        .addColumn('client_name', 'text', (c) => c.notNull().defaultTo(''))
        .addColumn('client_ip', 'text', (c) => c.notNull().defaultTo(''))
        .addColumn('expires_at', 'text', (c) => c.notNull())
        .addColumn('created_at', 'text', (c) => c.notNull())
        .addColumn('last_polled_at', 'text')
        .execute();
      await db.schema
        .createIndex('device_authorizations_pending_user_code_idx')
        .on('device_authorizations')
        .column('user_code')
        .unique()
        .where(sql.ref('status'), '=', 'pending')
        .execute();
      await db.schema.createIndex('device_authorizations_expires_at_idx').on('device_authorizations').column('expires_at').execute();
    },

    async down(db: Kysely<any>): Promise<void> {
      await db.schema.dropTable('device_authorizations').ifExists().execute();
    },
  };
}

/** Policies with their version history, the append-only audit trail, exporter cursors and live connections. */
function policiesAuditSchema(dialect: StoreDialect): Migration {
  return {
    async up(db: Kysely<any>): Promise<void> {
      await db.schema
        .createTable('policies')
        .addColumn('id', 'text', (c) => c.primaryKey())
        .addColumn('namespace', 'text', (c) => c.notNull())
        .addColumn('name', 'text', (c) => c.notNull())
        .addColumn('version', 'integer', (c) => c.notNull())
        .addColumn('document', 'text', (c) => c.notNull())
        .addColumn('created_at', 'text', (c) => c.notNull())
        .addColumn('updated_at', 'text', (c) => c.notNull())
        .addUniqueConstraint('policies_namespace_name_key', ['namespace', 'name'])
        .execute();
      await db.schema
        .createTable('policy_versions')
        .addColumn('policy_id', 'text', (c) => c.notNull())
        .addColumn('namespace', 'text', (c) => c.notNull())
        .addColumn('name', 'text', (c) => c.notNull())
        .addColumn('version', 'integer', (c) => c.notNull())
        .addColumn('document', 'text')
        .addColumn('author', 'text', (c) => c.notNull().defaultTo(''))
        .addColumn('created_at', 'text', (c) => c.notNull())
        .addPrimaryKeyConstraint('policy_versions_pkey', ['policy_id', 'version'])
        .execute();
      await db.schema.createIndex('policy_versions_name_idx').on('policy_versions').columns(['namespace', 'name']).execute();

      const audit = db.schema.createTable('audit_events');
      await (dialect === 'postgres'
        ? audit.addColumn('id', 'bigserial', (c) => c.primaryKey())
        : audit.addColumn('id', 'integer', (c) => c.primaryKey().autoIncrement())
      )
        .addColumn('type', 'text', (c) => c.notNull())
        .addColumn('at', 'text', (c) => c.notNull())
        .addColumn('actor', 'text', (c) => c.notNull().defaultTo(''))
        .addColumn('socket', 'text', (c) => c.notNull().defaultTo(''))
        .addColumn('client_ip', 'text', (c) => c.notNull().defaultTo(''))
        .addColumn('country', 'text', (c) => c.notNull().defaultTo(''))
        .addColumn('decision', 'text', (c) => c.notNull().defaultTo(''))
        .addColumn('rule', 'text', (c) => c.notNull().defaultTo(''))
        .addColumn('reason', 'text', (c) => c.notNull().defaultTo(''))
        .addColumn('connection_id', 'text', (c) => c.notNull().defaultTo(''))
        .addColumn('session_id', 'text', (c) => c.notNull().defaultTo(''))
        .addColumn('details', 'text', (c) => c.notNull().defaultTo('{}'))
        .execute();
      await db.schema.createIndex('audit_events_at_idx').on('audit_events').column('at').execute();
      await db.schema.createIndex('audit_events_actor_idx').on('audit_events').columns(['actor', 'id']).execute();
      await db.schema.createIndex('audit_events_socket_idx').on('audit_events').columns(['socket', 'id']).execute();

      await db.schema
        .createTable('export_cursors')
        .addColumn('name', 'text', (c) => c.primaryKey())
        .addColumn('last_id', 'bigint', (c) => c.notNull())
        .addColumn('updated_at', 'text', (c) => c.notNull())
        .execute();

      await db.schema
        .createTable('live_connections')
        .addColumn('id', 'text', (c) => c.primaryKey())
        .addColumn('edge_id', 'text', (c) => c.notNull())
        .addColumn('protocol', 'text', (c) => c.notNull())
        .addColumn('socket', 'text', (c) => c.notNull())
        .addColumn('user_id', 'text', (c) => c.notNull())
        .addColumn('email', 'text', (c) => c.notNull())
        .addColumn('session_id', 'text', (c) => c.notNull())
        .addColumn('client_ip', 'text', (c) => c.notNull())
        .addColumn('country', 'text', (c) => c.notNull())
        .addColumn('started_at', 'text', (c) => c.notNull())
        .addColumn('bytes_up', 'bigint', (c) => c.notNull())
        .addColumn('bytes_down', 'bigint', (c) => c.notNull())
        .addColumn('updated_at', 'text', (c) => c.notNull())
        .execute();
      await db.schema.createIndex('live_connections_updated_at_idx').on('live_connections').column('updated_at').execute();
    },

    async down(db: Kysely<any>): Promise<void> {
      for (const table of ['live_connections', 'export_cursors', 'audit_events', 'policy_versions', 'policies']) {
        await db.schema.dropTable(table).ifExists().execute();
      }
    },
  };
}

/**
 * Connector ↔ socket bindings. Before 0006 any enrolled connector could serve any socket, and
 * which ones a connector did serve was never stored, so existing sockets are bound to every
 * connector that is not revoked: deployments keep working, and nothing enrolled from now on
 * serves a socket unless bound. Tokens not yet used bind nothing (there is no way to tell what
 * they were meant for); `socket update --connector` binds their connectors.
 */
function socketBindingsSchema(): Migration {
  return {
    async up(db: Kysely<any>): Promise<void> {
      await db.schema.alterTable('sockets').addColumn('connectors', 'text', (c) => c.notNull().defaultTo('[]')).execute();
      await db.schema.alterTable('connectors').addColumn('socket_tags', 'text').execute();
      await db.schema.alterTable('join_tokens').addColumn('sockets', 'text', (c) => c.notNull().defaultTo('[]')).execute();
      await db.schema.alterTable('join_tokens').addColumn('socket_tags', 'text').execute();
      const connectors = await db.selectFrom('connectors').select('id').where('revoked_at', 'is', null).orderBy('created_at').orderBy('id').execute();
      await db.updateTable('sockets').set({ connectors: JSON.stringify(connectors.map((c: { id: string }) => c.id)) }).execute();
    },

    async down(db: Kysely<any>): Promise<void> {
      await db.schema.alterTable('join_tokens').dropColumn('socket_tags').execute();
      await db.schema.alterTable('join_tokens').dropColumn('sockets').execute();
      await db.schema.alterTable('connectors').dropColumn('socket_tags').execute();
      await db.schema.alterTable('sockets').dropColumn('connectors').execute();
    },
  };
}

/** HTTP sockets may opt into passing ambiguous paths as sent (off for every existing socket). */
function socketRawPathsSchema(): Migration {
  return {
    async up(db: Kysely<any>): Promise<void> {
      await db.schema.alterTable('sockets').addColumn('raw_paths', 'integer', (c) => c.notNull().defaultTo(0)).execute();
    },
    async down(db: Kysely<any>): Promise<void> {
      await db.schema.alterTable('sockets').dropColumn('raw_paths').execute();
    },
  };
}

/**
 * Links from an external provider's stable (issuer, subject) to a user, so a returning person is
 * found by who the provider says they are, never by an email claim alone. No existing user has
 * a link: each gets one on its next sign-in through a provider that vouches for its email.
 */
function externalIdentitiesSchema(): Migration {
  return {
    async up(db: Kysely<any>): Promise<void> {
      await db.schema
        .createTable('external_identities')
        .addColumn('id', 'text', (c) => c.primaryKey())
        .addColumn('user_id', 'text', (c) => c.notNull())
        .addColumn('issuer', 'text', (c) => c.notNull())
        .addColumn('subject', 'text', (c) => c.notNull())
        .addColumn('provider', 'text', (c) => c.notNull())
        .addColumn('email', 'text', (c) => c.notNull())
        .addColumn('created_at', 'text', (c) => c.notNull())
        .addUniqueConstraint('external_identities_issuer_subject_key', ['issuer', 'subject'])
        .execute();
      await db.schema.createIndex('external_identities_user_id_idx').on('external_identities').column('user_id').execute();
    },

    async down(db: Kysely<any>): Promise<void> {
      await db.schema.dropTable('external_identities').ifExists().execute();
    },
  };
}

/** Scoped API tokens (existing ones keep doing everything: `admin`) and PKCE for loopback CLI sign-in. */
function tokenScopesPkceSchema(): Migration {
  return {
    async up(db: Kysely<any>): Promise<void> {
      await db.schema.alterTable('api_tokens').addColumn('scopes', 'text', (c) => c.notNull().defaultTo('["admin"]')).execute();
      await db.schema.alterTable('device_authorizations').addColumn('code_challenge', 'text').execute();
    },

    async down(db: Kysely<any>): Promise<void> {
      await db.schema.alterTable('device_authorizations').dropColumn('code_challenge').execute();
      await db.schema.alterTable('api_tokens').dropColumn('scopes').execute();
    },
  };
}

/**
 * Managed SSH sockets: whether recordings keep input, and the upstream host key pinned at first
 * use (existing sockets record output only and have no pin).
 */
function sshSocketsSchema(): Migration {
  return {
    async up(db: Kysely<any>): Promise<void> {
      await db.schema.alterTable('sockets').addColumn('record_input', 'integer', (c) => c.notNull().defaultTo(0)).execute();
      await db.schema.alterTable('sockets').addColumn('upstream_host_key', 'text').execute();
    },
    async down(db: Kysely<any>): Promise<void> {
      await db.schema.alterTable('sockets').dropColumn('upstream_host_key').execute();
      await db.schema.alterTable('sockets').dropColumn('record_input').execute();
    },
  };
}

/** postgres sockets: the database a session opens when the client names none (existing sockets have none). */
function socketDatabaseSchema(): Migration {
  return {
    async up(db: Kysely<any>): Promise<void> {
      await db.schema.alterTable('sockets').addColumn('database', 'text').execute();
    },
    async down(db: Kysely<any>): Promise<void> {
      await db.schema.alterTable('sockets').dropColumn('database').execute();
    },
  };
}

/** The ordered migrations for a dialect; names sort in application order. */
export function storeMigrations(dialect: StoreDialect): Record<string, Migration> {
  return {
    '0001_initial': initialSchema(dialect),
    '0002_identity': identitySchema(),
    '0003_identity_providers': identityProvidersSchema(),
    '0004_device_authorizations': deviceAuthorizationsSchema(),
    '0005_policies_audit': policiesAuditSchema(dialect),
    '0006_socket_bindings': socketBindingsSchema(),
    '0007_socket_raw_paths': socketRawPathsSchema(),
    '0008_external_identities': externalIdentitiesSchema(),
    '0009_token_scopes_pkce': tokenScopesPkceSchema(),
    '0010_recordings': recordingsSchema(dialect),
    '0011_ssh_sockets': sshSocketsSchema(),
    '0012_audit_time_decision_index': auditTimeDecisionIndex(),
    '0013_audit_search': auditSearchSchema(dialect),
    '0014_agents': agentsSchema(),
    '0015_agent_services': agentServicesSchema(),
    '0016_socket_database': socketDatabaseSchema(),
    '0017_live_activity': liveActivitySchema(),
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
  let migrationTableSchema: string | undefined;
  if (dialect === 'postgres') {
    // Kysely looks for its migration tables in any schema unless told which: pin them to ours,
    // or a second Postern schema in the same database would find the first one's tables.
    try {
      const { rows } = await sql<{ schema: string | null }>`select current_schema() as schema`.execute(db);
      migrationTableSchema = rows[0]?.schema ?? undefined;
    } catch (err) {
      throw new PosternError('store_unavailable', `store migration failed: ${errorMessage(err)}`, { cause: err });
    }
  }
  const migrator = new Migrator({
    db,
    provider: new InCodeMigrationProvider(storeMigrations(dialect)),
    ...(migrationTableSchema === undefined ? {} : { migrationTableSchema }),
  });
  const { error, results } = await migrator.migrateToLatest();
  if (error !== undefined) {
    const failed = results?.find((r) => r.status === 'Error')?.migrationName;
    const where = failed === undefined ? '' : ` (${failed})`;
    throw new PosternError('store_unavailable', `store migration failed${where}: ${errorMessage(error)}`, {
      cause: error,
    });
  }
}
