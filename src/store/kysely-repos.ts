// The per-entity repositories of the Kysely store. Each mutation runs inside the store's
// write transaction and records exactly one change there (or none when nothing changed).

import type { Kysely } from 'kysely';
import { PosternError } from '../errors.js';
import { SOCKET_NAME_PATTERN } from './names.js';
import { checkString, isUniqueViolation, toApiToken, toConnector, toJoinToken, toSocket, toTimestamp } from './rows.js';
import type { Database } from './schema.js';
import { API_TOKEN_SCOPES } from './types.js';
import { defaultSocketAuth, normalizeSocketAuth, serializeSocketAuth } from './socket-auth.js';
import { bindEnrolled, checkConnectorIds, checkConnectorsExist, checkSocketNames, checkTagSelector, serializeTagSelector } from './bindings.js';
import { SOCKET_TYPES, isSocketType } from './socket-types.js';
import { checkUpstreamHostKey } from './host-key.js';
import type {
  ApiTokenRecord,
  ApiTokenRepo,
  ApiTokenRole,
  ApiTokenScope,
  ChangeEntity,
  ChangeOp,
  ConnectorRecord,
  ConnectorRepo,
  JoinTokenRecord,
  JoinTokenRepo,
  ListPage,
  NewJoinToken,
  NewSocket,
  SecretRepo,
  SocketPatch,
  SocketRecord,
  SocketRepo,
} from './types.js';

export type RecordChange = (entity: ChangeEntity, entityId: string, op: ChangeOp) => Promise<void>;

/** What the repositories need from the store that owns them. */
export interface RepoContext {
  readonly db: Kysely<Database>;
  /** Runs `fn` in a serialized write transaction; listeners hear of it after commit. */
  write<T>(what: string, fn: (tx: Kysely<Database>, record: RecordChange) => Promise<T>): Promise<T>;
  /**
   * Runs `fn` in a serialized write transaction that records no change (bookkeeping that never
   * reaches a snapshot); on PostgreSQL it does not take the change-log lock, so it never waits
   * for (or holds up) logged writers.
   */
  writeUnlogged<T>(what: string, fn: (tx: Kysely<Database>) => Promise<T>): Promise<T>;
  /** Runs a read, mapping driver errors to PosternError. */
  read<T>(what: string, fn: (db: Kysely<Database>) => Promise<T>): Promise<T>;
  now(): string;
  newId(prefix: string): string;
}

const apiTokenRoles: ReadonlySet<string> = new Set(['admin', 'service']);
const apiTokenScopes: ReadonlySet<string> = new Set(API_TOKEN_SCOPES);

function checkSocket(input: { name?: string; type?: string; recordInput?: unknown; upstreamHostKey?: unknown; database?: unknown }): void {
  if (input.name !== undefined && !SOCKET_NAME_PATTERN.test(input.name)) {
    throw new PosternError('bad_request', `socket name "${input.name}" is not a valid DNS label`);
  }
  if (input.type !== undefined && !isSocketType(input.type)) {
    throw new PosternError('bad_request', `socket type "${input.type}" is not one of ${SOCKET_TYPES.join(', ')}`);
  }
  if (input.recordInput !== undefined && typeof input.recordInput !== 'boolean') throw new PosternError('bad_request', 'recordInput must be a boolean');
  if (input.upstreamHostKey !== undefined && input.upstreamHostKey !== null) checkUpstreamHostKey(input.upstreamHostKey);
  if (input.database !== undefined && input.database !== null) checkString(input.database, 'database', { nonEmpty: true, max: 63 });
}

export function conflict(message: string, cause?: unknown): PosternError {
  return new PosternError('conflict', message, cause === undefined ? {} : { cause });
}

export function notFound(message: string): PosternError {
  return new PosternError('not_found', message);
}

export async function insertUnique(insert: () => Promise<unknown>, message: string): Promise<void> {
  try {
    await insert();
  } catch (err) {
    if (isUniqueViolation(err)) throw conflict(message, err);
    throw err;
  }
}

export class KyselySocketRepo implements SocketRepo {
  constructor(private readonly ctx: RepoContext) {}

  list(page?: ListPage): Promise<SocketRecord[]> {
    return this.ctx.read('list sockets', async (db) => {
      let query = db.selectFrom('sockets').selectAll().orderBy('name');
      if (page?.after !== undefined) query = query.where('name', '>', page.after);
      if (page !== undefined) query = query.limit(page.limit);
      return (await query.execute()).map(toSocket);
    });
  }

  get(name: string): Promise<SocketRecord | undefined> {
    return this.ctx.read('get socket', async (db) => {
      const row = await db.selectFrom('sockets').selectAll().where('name', '=', name).executeTakeFirst();
      return row === undefined ? undefined : toSocket(row);
    });
  }

  async create(input: NewSocket): Promise<SocketRecord> {
    checkSocket(input);
    const auth = input.auth === undefined ? defaultSocketAuth : normalizeSocketAuth(input.auth);
    const connectors = checkConnectorIds(input.connectors ?? []);
    return this.ctx.write('create socket', async (tx, record) => {
      const message = `socket "${input.name}" already exists`;
      const taken = await tx.selectFrom('sockets').select('id').where('name', '=', input.name).executeTakeFirst();
      if (taken !== undefined) throw conflict(message);
      await checkConnectorsExist(tx, connectors);
      const now = this.ctx.now();
      const row = {
        id: this.ctx.newId('sock_'),
        name: input.name,
        type: input.type,
        auth: serializeSocketAuth(auth),
        upstream: input.upstream ?? null,
        description: input.description ?? '',
        tags: JSON.stringify(input.tags ?? {}),
        raw_paths: input.rawPaths ? 1 : 0,
        connectors: JSON.stringify(connectors),
        record_input: input.recordInput ? 1 : 0,
        upstream_host_key: input.upstreamHostKey ?? null,
        database: input.database ?? null,
        created_at: now,
        updated_at: now,
      };
      await insertUnique(() => tx.insertInto('sockets').values(row).execute(), message);
      await record('socket', row.id, 'create');
      return toSocket(row);
    });
  }

  async update(name: string, patch: SocketPatch): Promise<SocketRecord> {
    checkSocket({ type: patch.type, recordInput: patch.recordInput, upstreamHostKey: patch.upstreamHostKey, database: patch.database });
    const auth = patch.auth === undefined ? undefined : normalizeSocketAuth(patch.auth);
    const connectors = patch.connectors === undefined ? undefined : checkConnectorIds(patch.connectors);
    return this.ctx.write('update socket', async (tx, record) => {
      const row = await tx.selectFrom('sockets').selectAll().where('name', '=', name).executeTakeFirst();
      if (row === undefined) throw notFound(`socket "${name}" not found`);
      if (connectors !== undefined) await checkConnectorsExist(tx, connectors);
      const next = {
        ...row,
        type: patch.type ?? row.type,
        auth: auth === undefined ? row.auth : serializeSocketAuth(auth),
        upstream: patch.upstream === undefined ? row.upstream : patch.upstream,
        description: patch.description ?? row.description,
        tags: patch.tags === undefined ? row.tags : JSON.stringify(patch.tags),
        raw_paths: patch.rawPaths === undefined ? row.raw_paths : patch.rawPaths ? 1 : 0,
        connectors: connectors === undefined ? row.connectors : JSON.stringify(connectors),
        record_input: patch.recordInput === undefined ? row.record_input : patch.recordInput ? 1 : 0,
        upstream_host_key: patch.upstreamHostKey === undefined ? row.upstream_host_key : patch.upstreamHostKey,
        database: patch.database === undefined ? row.database : patch.database,
        updated_at: this.ctx.now(),
      };
      await tx
        .updateTable('sockets')
        .set({
          type: next.type,
          auth: next.auth,
          upstream: next.upstream,
          description: next.description,
          tags: next.tags,
          raw_paths: next.raw_paths,
          connectors: next.connectors,
          record_input: next.record_input,
          upstream_host_key: next.upstream_host_key,
          database: next.database,
          updated_at: next.updated_at,
        })
        .where('id', '=', row.id)
        .execute();
      await record('socket', row.id, 'update');
      return toSocket(next);
    });
  }

  delete(name: string): Promise<void> {
    return this.ctx.write('delete socket', async (tx, record) => {
      const row = await tx.selectFrom('sockets').select('id').where('name', '=', name).executeTakeFirst();
      if (row === undefined) throw notFound(`socket "${name}" not found`);
      await tx.deleteFrom('sockets').where('id', '=', row.id).execute();
      await record('socket', row.id, 'delete');
    });
  }
}

export class KyselyConnectorRepo implements ConnectorRepo {
  constructor(private readonly ctx: RepoContext) {}

  list(page?: ListPage): Promise<ConnectorRecord[]> {
    return this.ctx.read('list connectors', async (db) => {
      if (page === undefined) return (await db.selectFrom('connectors').selectAll().orderBy('created_at').orderBy('id').execute()).map(toConnector);
      let query = db.selectFrom('connectors').selectAll().orderBy('id').limit(page.limit);
      if (page.after !== undefined) query = query.where('id', '>', page.after);
      return (await query.execute()).map(toConnector);
    });
  }

  get(id: string): Promise<ConnectorRecord | undefined> {
    return this.ctx.read('get connector', async (db) => {
      const row = await db.selectFrom('connectors').selectAll().where('id', '=', id).executeTakeFirst();
      return row === undefined ? undefined : toConnector(row);
    });
  }

  create(input: { name: string }): Promise<ConnectorRecord> {
    return this.ctx.write('create connector', async (tx, record) => {
      const row = {
        id: this.ctx.newId('ctr_'),
        name: input.name,
        cert_serial: null,
        cert_not_after: null,
        last_seen_at: null,
        revoked_at: null,
        socket_tags: null,
        created_at: this.ctx.now(),
      };
      await tx.insertInto('connectors').values(row).execute();
      await record('connector', row.id, 'create');
      return toConnector(row);
    });
  }

  async recordCertificate(id: string, serial: string, notAfter: string): Promise<void> {
    const certNotAfter = toTimestamp(notAfter, 'notAfter');
    return this.updateConnector('record connector certificate', id, { cert_serial: serial, cert_not_after: certNotAfter });
  }

  async touch(id: string, at: string): Promise<void> {
    return this.updateConnector('touch connector', id, { last_seen_at: toTimestamp(at, 'at') });
  }

  async revoke(id: string, at: string): Promise<void> {
    const revokedAt = toTimestamp(at, 'at');
    return this.ctx.write('revoke connector', async (tx, record) => {
      const row = await tx.selectFrom('connectors').select(['id', 'revoked_at']).where('id', '=', id).executeTakeFirst();
      if (row === undefined) throw notFound(`connector "${id}" not found`);
      if (row.revoked_at !== null) return; // Revoking twice keeps the first revocation time.
      await tx.updateTable('connectors').set({ revoked_at: revokedAt }).where('id', '=', id).execute();
      await record('connector', id, 'update');
    });
  }

  delete(id: string): Promise<void> {
    return this.ctx.write('delete connector', async (tx, record) => {
      const result = await tx.deleteFrom('connectors').where('id', '=', id).executeTakeFirst();
      if (result.numDeletedRows === 0n) throw notFound(`connector "${id}" not found`);
      await record('connector', id, 'delete');
    });
  }

  private updateConnector(
    what: string,
    id: string,
    set: { cert_serial?: string; cert_not_after?: string; last_seen_at?: string },
  ): Promise<void> {
    return this.ctx.write(what, async (tx, record) => {
      const result = await tx.updateTable('connectors').set(set).where('id', '=', id).executeTakeFirst();
      if (result.numUpdatedRows === 0n) throw notFound(`connector "${id}" not found`);
      await record('connector', id, 'update');
    });
  }
}

export class KyselyJoinTokenRepo implements JoinTokenRepo {
  constructor(private readonly ctx: RepoContext) {}

  async create(input: NewJoinToken): Promise<JoinTokenRecord> {
    const expiresAt = toTimestamp(input.expiresAt, 'expiresAt');
    const sockets = checkSocketNames(input.sockets ?? []);
    const socketTags = checkTagSelector(input.socketTags);
    return this.ctx.write('create join token', async (tx, record) => {
      const row = {
        id: this.ctx.newId('jt_'),
        token_hash: input.tokenHash,
        connector_name: input.connectorName,
        expires_at: expiresAt,
        used_at: null,
        connector_id: null,
        sockets: JSON.stringify(sockets),
        socket_tags: serializeTagSelector(socketTags),
        created_at: this.ctx.now(),
      };
      await insertUnique(() => tx.insertInto('join_tokens').values(row).execute(), 'join token already exists');
      await record('join_token', row.id, 'create');
      return toJoinToken(row);
    });
  }

  list(): Promise<JoinTokenRecord[]> {
    return this.ctx.read('list join tokens', async (db) =>
      (await db.selectFrom('join_tokens').selectAll().orderBy('created_at').orderBy('id').execute()).map(toJoinToken),
    );
  }

  async consume(tokenHash: string, connectorId: string, at: string): Promise<JoinTokenRecord> {
    const usedAt = toTimestamp(at, 'at');
    return this.ctx.write('consume join token', async (tx, record) => {
      // One conditional UPDATE decides the winner; concurrent consumers see 0 rows.
      const result = await tx
        .updateTable('join_tokens')
        .set({ used_at: usedAt, connector_id: connectorId })
        .where('token_hash', '=', tokenHash)
        .where('used_at', 'is', null)
        .where('expires_at', '>', usedAt)
        .executeTakeFirst();
      const row = await tx.selectFrom('join_tokens').selectAll().where('token_hash', '=', tokenHash).executeTakeFirst();
      if (result.numUpdatedRows === 0n || row === undefined) {
        if (row === undefined) throw new PosternError('token_invalid', 'join token is not valid');
        if (row.used_at !== null) throw new PosternError('token_used', 'join token has already been used');
        throw new PosternError('token_expired', `join token expired at ${row.expires_at}`);
      }
      await record('join_token', row.id, 'update');
      await bindEnrolled(tx, record, connectorId, row);
      return toJoinToken(row);
    });
  }

  delete(id: string): Promise<void> {
    return this.ctx.write('delete join token', async (tx, record) => {
      const result = await tx.deleteFrom('join_tokens').where('id', '=', id).executeTakeFirst();
      if (result.numDeletedRows === 0n) throw notFound(`join token "${id}" not found`);
      await record('join_token', id, 'delete');
    });
  }
}

export class KyselyApiTokenRepo implements ApiTokenRepo {
  constructor(private readonly ctx: RepoContext) {}

  async create(input: { name: string; tokenHash: string; role: ApiTokenRole; scopes: readonly ApiTokenScope[] }): Promise<ApiTokenRecord> {
    if (!apiTokenRoles.has(input.role)) {
      throw new PosternError('bad_request', `API token role "${input.role}" is not one of admin, service`);
    }
    const unknown = input.scopes.find((s) => !apiTokenScopes.has(s));
    if (input.scopes.length === 0 || unknown !== undefined) {
      throw new PosternError('bad_request', `API token scopes must be one or more of ${API_TOKEN_SCOPES.join(', ')}${unknown === undefined ? '' : ` (not "${unknown}")`}`);
    }
    return this.ctx.write('create API token', async (tx, record) => {
      const row = {
        id: this.ctx.newId('tok_'),
        name: input.name,
        token_hash: input.tokenHash,
        role: input.role,
        scopes: JSON.stringify([...new Set(input.scopes)].sort()),
        created_at: this.ctx.now(),
        last_used_at: null,
        revoked_at: null,
      };
      await insertUnique(() => tx.insertInto('api_tokens').values(row).execute(), 'API token already exists');
      await record('api_token', row.id, 'create');
      return toApiToken(row);
    });
  }

  list(): Promise<ApiTokenRecord[]> {
    return this.ctx.read('list API tokens', async (db) =>
      (await db.selectFrom('api_tokens').selectAll().orderBy('created_at').orderBy('id').execute()).map(toApiToken),
    );
  }

  findByHash(tokenHash: string): Promise<ApiTokenRecord | undefined> {
    return this.ctx.read('find API token', async (db) => {
      const row = await db.selectFrom('api_tokens').selectAll().where('token_hash', '=', tokenHash).executeTakeFirst();
      return row === undefined ? undefined : toApiToken(row);
    });
  }

  async revoke(id: string, at: string): Promise<void> {
    const revokedAt = toTimestamp(at, 'at');
    return this.ctx.write('revoke API token', async (tx, record) => {
      const row = await tx.selectFrom('api_tokens').select(['id', 'revoked_at']).where('id', '=', id).executeTakeFirst();
      if (row === undefined) throw notFound(`API token "${id}" not found`);
      if (row.revoked_at !== null) return;
      await tx.updateTable('api_tokens').set({ revoked_at: revokedAt }).where('id', '=', id).execute();
      await record('api_token', id, 'update');
    });
  }
}

export class KyselySecretRepo implements SecretRepo {
  constructor(private readonly ctx: RepoContext) {}

  get(name: string): Promise<string | undefined> {
    return this.ctx.read('get secret', async (db) => {
      const row = await db.selectFrom('secrets').select('value').where('name', '=', name).executeTakeFirst();
      return row?.value;
    });
  }

  putIfAbsent(name: string, value: string): Promise<string> {
    return this.ctx.write('store secret', async (tx, record) => {
      const result = await tx
        .insertInto('secrets')
        .values({ name, value })
        .onConflict((oc) => oc.column('name').doNothing())
        .executeTakeFirst();
      if ((result.numInsertedOrUpdatedRows ?? 0n) > 0n) await record('secret', name, 'create');
      const row = await tx.selectFrom('secrets').select('value').where('name', '=', name).executeTakeFirstOrThrow();
      return row.value;
    });
  }

  put(name: string, value: string): Promise<void> {
    return this.ctx.write('store secret', async (tx, record) => {
      const existing = await tx.selectFrom('secrets').select('name').where('name', '=', name).executeTakeFirst();
      await tx
        .insertInto('secrets')
        .values({ name, value })
        .onConflict((oc) => oc.column('name').doUpdateSet({ value }))
        .execute();
      await record('secret', name, existing === undefined ? 'create' : 'update');
    });
  }
}
