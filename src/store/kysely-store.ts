// The one Store implementation, over Kysely, for both SQLite and PostgreSQL. Writers are
// serialized (SQLite: BEGIN IMMEDIATE; PostgreSQL: a lock on the change log) so revisions
// commit in order and a reader that saw revision N has seen every change up to N.

import { sql } from 'kysely';
import type { Kysely } from 'kysely';
import { PosternError } from '../errors.js';
import {
  KyselyApiTokenRepo,
  KyselyConnectorRepo,
  KyselyJoinTokenRepo,
  KyselySecretRepo,
  KyselySocketRepo,
} from './kysely-repos.js';
import type { RecordChange, RepoContext } from './kysely-repos.js';
import {
  KyselyHandoffCodeRepo,
  KyselySessionGrantRepo,
  KyselySessionRepo,
  KyselyUserRepo,
} from './kysely-identity-repos.js';
import { KyselyIdentityProviderRepo } from './kysely-provider-repos.js';
import { KyselyDeviceAuthorizationRepo } from './kysely-device-repos.js';
import { KyselyExternalIdentityRepo } from './kysely-external-identity-repos.js';
import { KyselyPolicyRepo } from './kysely-policy-repos.js';
import { KyselyAuditRepo, KyselyLiveConnectionRepo } from './kysely-audit-repos.js';
import { KyselyRecordingRepo } from './kysely-recording-repos.js';
import { createKyselyAgentStore } from './kysely-agent-repos.js';
import { migrateToLatest } from './migrations.js';
import { newId, toChange, toStoreError } from './rows.js';
import { consoleLogger } from './runtime.js';
import type { StoreLogger } from './runtime.js';
import type { Database, StoreDialect } from './schema.js';
import type { AgentStore, Change, Store } from './types.js';

export interface KyselyStoreOptions {
  readonly dialect: StoreDialect;
  /** Clock for createdAt/updatedAt and change times. */
  readonly now?: () => Date;
  /** Random source for ids. */
  readonly randomBytes?: (size: number) => Uint8Array;
  readonly logger?: StoreLogger;
  /** Wraps every write transaction and migration (SQLite: a per-file lock across Stores). */
  readonly serializeWrites?: <T>(fn: () => Promise<T>) => Promise<T>;
}

export const defaultChangesLimit = 1000;
export const maxChangesLimit = 10_000;

class KyselyStore implements Store, RepoContext {
  readonly dialect: StoreDialect;
  readonly sockets: KyselySocketRepo;
  readonly connectors: KyselyConnectorRepo;
  readonly joinTokens: KyselyJoinTokenRepo;
  readonly apiTokens: KyselyApiTokenRepo;
  readonly secrets: KyselySecretRepo;
  readonly users: KyselyUserRepo;
  readonly sessions: KyselySessionRepo;
  readonly sessionGrants: KyselySessionGrantRepo;
  readonly handoffCodes: KyselyHandoffCodeRepo;
  readonly deviceAuthorizations: KyselyDeviceAuthorizationRepo;
  readonly externalIdentities: KyselyExternalIdentityRepo;
  readonly identityProviders: KyselyIdentityProviderRepo;
  readonly policies: KyselyPolicyRepo;
  readonly audit: KyselyAuditRepo;
  readonly liveConnections: KyselyLiveConnectionRepo;
  readonly recordings: KyselyRecordingRepo;
  readonly agents: AgentStore;
  readonly db: Kysely<Database>;

  readonly #clock: () => Date;
  readonly #randomBytes: ((size: number) => Uint8Array) | undefined;
  readonly #logger: StoreLogger;
  readonly #listeners = new Set<() => void>();
  readonly #serialize: <T>(fn: () => Promise<T>) => Promise<T>;
  #closing: Promise<void> | undefined;

  constructor(db: Kysely<Database>, options: KyselyStoreOptions) {
    this.db = db;
    this.dialect = options.dialect;
    this.#clock = options.now ?? (() => new Date());
    this.#randomBytes = options.randomBytes;
    this.#logger = options.logger ?? consoleLogger;
    this.#serialize = options.serializeWrites ?? ((fn) => fn());
    this.sockets = new KyselySocketRepo(this);
    this.connectors = new KyselyConnectorRepo(this);
    this.joinTokens = new KyselyJoinTokenRepo(this);
    this.apiTokens = new KyselyApiTokenRepo(this);
    this.secrets = new KyselySecretRepo(this);
    this.users = new KyselyUserRepo(this);
    this.sessions = new KyselySessionRepo(this);
    this.sessionGrants = new KyselySessionGrantRepo(this);
    this.handoffCodes = new KyselyHandoffCodeRepo(this);
    this.deviceAuthorizations = new KyselyDeviceAuthorizationRepo(this);
    this.externalIdentities = new KyselyExternalIdentityRepo(this);
    this.identityProviders = new KyselyIdentityProviderRepo(this);
    this.policies = new KyselyPolicyRepo(this);
    this.audit = new KyselyAuditRepo(this);
    this.liveConnections = new KyselyLiveConnectionRepo(this);
    this.recordings = new KyselyRecordingRepo(this);
    this.agents = createKyselyAgentStore(this);
  }

  now(): string {
    return this.#clock().toISOString();
  }

  newId(prefix: string): string {
    return newId(prefix, this.#randomBytes);
  }

  async read<T>(what: string, fn: (db: Kysely<Database>) => Promise<T>): Promise<T> {
    try {
      return await fn(this.db);
    } catch (err) {
      throw toStoreError(err, what);
    }
  }

  async write<T>(what: string, fn: (tx: Kysely<Database>, record: RecordChange) => Promise<T>): Promise<T> {
    let changed = false;
    const transaction = () =>
      this.db.transaction().execute(async (tx) => {
        if (this.dialect === 'postgres') {
          // EXCLUSIVE blocks other writers (and so orders their revisions) but not plain reads.
          await sql`lock table changes in exclusive mode`.execute(tx);
        }
        const at = this.now();
        const record: RecordChange = async (entity, entityId, op) => {
          await tx.insertInto('changes').values({ entity, entity_id: entityId, op, at }).execute();
          changed = true;
        };
        return fn(tx, record);
      });
    let result: T;
    try {
      result = await this.#serialize(transaction);
    } catch (err) {
      throw toStoreError(err, what);
    }
    if (changed) this.#emitLocalChange();
    return result;
  }

  async writeUnlogged<T>(what: string, fn: (tx: Kysely<Database>) => Promise<T>): Promise<T> {
    // No change-log lock on PostgreSQL: these writes add no revision, so they need no ordering
    // against logged writers (row locks and conditional updates decide races among themselves).
    const transaction = () => this.db.transaction().execute(fn);
    try {
      return await this.#serialize(transaction);
    } catch (err) {
      throw toStoreError(err, what);
    }
  }

  async migrate(): Promise<void> {
    await this.#serialize(() => migrateToLatest(this.db, this.dialect));
  }

  currentRevision(): Promise<number> {
    return this.read('read revision', async (db) => {
      const row = await db
        .selectFrom('changes')
        .select((eb) => eb.fn.max('revision').as('revision'))
        .executeTakeFirst();
      return row?.revision === null || row?.revision === undefined ? 0 : Number(row.revision);
    });
  }

  async changesSince(revision: number, limit: number = defaultChangesLimit): Promise<Change[]> {
    if (!Number.isInteger(revision) || revision < 0) {
      throw new PosternError('bad_request', 'revision must be a non-negative integer');
    }
    if (!Number.isInteger(limit) || limit < 1 || limit > maxChangesLimit) {
      throw new PosternError('bad_request', `limit must be an integer from 1 to ${maxChangesLimit}`);
    }
    return this.read('read changes', async (db) =>
      (
        await db
          .selectFrom('changes')
          .selectAll()
          .where('revision', '>', revision)
          .orderBy('revision')
          .limit(limit)
          .execute()
      ).map(toChange),
    );
  }

  onLocalChange(listener: () => void): () => void {
    this.#listeners.add(listener);
    return () => {
      this.#listeners.delete(listener);
    };
  }

  close(): Promise<void> {
    this.#closing ??= (async () => {
      this.#listeners.clear();
      await this.db.destroy();
    })();
    return this.#closing;
  }

  #emitLocalChange(): void {
    for (const listener of [...this.#listeners]) {
      try {
        listener();
      } catch (err) {
        this.#logger.warn({ err }, 'local change listener threw');
      }
    }
  }
}

/** Wraps an open Kysely instance (already configured for `dialect`) as a Store. Does not migrate. */
export function createKyselyStore(db: Kysely<Database>, options: KyselyStoreOptions): Store {
  return new KyselyStore(db, options);
}
