// The identity repositories of the Kysely store: users, sessions, per-socket session grants
// and one-time hand-off codes. Logged mutations run in the store's write transaction with
// their change rows; last-seen bookkeeping and hand-off codes record no change (they never
// reach a snapshot) and so do not take the change-log lock.

import { PosternError } from '../errors.js';
import { conflict, insertUnique, notFound } from './kysely-repos.js';
import type { RepoContext } from './kysely-repos.js';
import { SOCKET_NAME_PATTERN } from './names.js';
import { checkString, toHandoffCode, toSession, toSessionGrant, toTimestamp, toUser } from './rows.js';
import { checkEmail, normalizeEmail } from './socket-auth.js';
import { externalIdentityRow, insertExternalIdentity } from './kysely-external-identity-repos.js';
import type {
  HandoffCodeRecord,
  HandoffCodeRepo,
  ListPage,
  NewSession,
  NewUser,
  SessionGrantRecord,
  SessionGrantRepo,
  SessionRecord,
  SessionRepo,
  UserPatch,
  UserRecord,
  UserRepo,
} from './types.js';

const sessionKinds: ReadonlySet<string> = new Set(['browser', 'cli']);

/** Expired hand-off codes are kept this long (so a late exchange still reads token_expired), then pruned. */
export const handoffRetentionMs = 24 * 3_600_000;

function badRequest(message: string): PosternError {
  return new PosternError('bad_request', message);
}

function checkGroups(groups: unknown): string[] {
  if (!Array.isArray(groups) || !groups.every((g): g is string => typeof g === 'string')) {
    throw badRequest('user groups must be an array of strings');
  }
  return [...groups];
}

function checkSocketName(socket: unknown): string {
  if (typeof socket !== 'string' || !SOCKET_NAME_PATTERN.test(socket)) {
    throw badRequest(`socket name "${String(socket)}" is not a valid DNS label`);
  }
  return socket;
}

export class KyselyUserRepo implements UserRepo {
  constructor(private readonly ctx: RepoContext) {}

  list(page?: ListPage): Promise<UserRecord[]> {
    return this.ctx.read('list users', async (db) => {
      let query = db.selectFrom('users').selectAll().orderBy('email');
      if (page?.after !== undefined) query = query.where('email', '>', page.after);
      if (page !== undefined) query = query.limit(page.limit);
      return (await query.execute()).map(toUser);
    });
  }

  get(id: string): Promise<UserRecord | undefined> {
    return this.ctx.read('get user', async (db) => {
      const row = await db.selectFrom('users').selectAll().where('id', '=', id).executeTakeFirst();
      return row === undefined ? undefined : toUser(row);
    });
  }

  findByEmail(email: string): Promise<UserRecord | undefined> {
    const normalized = normalizeEmail(email);
    return this.ctx.read('find user', async (db) => {
      const row = await db.selectFrom('users').selectAll().where('email', '=', normalized).executeTakeFirst();
      return row === undefined ? undefined : toUser(row);
    });
  }

  async create(input: NewUser): Promise<UserRecord> {
    const email = checkEmail(input.email);
    const name = checkString(input.name ?? '', 'user name');
    const groups = checkGroups(input.groups ?? []);
    const passwordHash = input.passwordHash ?? null;
    if (passwordHash !== null) checkString(passwordHash, 'passwordHash', { nonEmpty: true });
    const link = input.externalIdentity === undefined ? undefined : externalIdentityRow(this.ctx, input.externalIdentity);
    return this.ctx.write('create user', async (tx, record) => {
      const message = `user "${email}" already exists`;
      const taken = await tx.selectFrom('users').select('id').where('email', '=', email).executeTakeFirst();
      if (taken !== undefined) throw conflict(message);
      const now = this.ctx.now();
      const row = {
        id: this.ctx.newId('usr_'),
        email,
        name,
        groups: JSON.stringify(groups),
        password_hash: passwordHash,
        disabled_at: null,
        created_at: now,
        updated_at: now,
      };
      await insertUnique(() => tx.insertInto('users').values(row).execute(), message);
      if (link !== undefined) await insertExternalIdentity(tx, link, row.id);
      await record('user', row.id, 'create');
      return toUser(row);
    });
  }

  async update(id: string, patch: UserPatch): Promise<UserRecord> {
    const set: { name?: string; groups?: string; password_hash?: string | null; disabled_at?: string | null } = {};
    if (patch.name !== undefined) set.name = checkString(patch.name, 'user name');
    if (patch.groups !== undefined) set.groups = JSON.stringify(checkGroups(patch.groups));
    if (patch.passwordHash !== undefined) {
      set.password_hash = patch.passwordHash === null ? null : checkString(patch.passwordHash, 'passwordHash', { nonEmpty: true });
    }
    if (patch.disabledAt !== undefined) {
      set.disabled_at = patch.disabledAt === null ? null : toTimestamp(patch.disabledAt, 'disabledAt');
    }
    return this.ctx.write('update user', async (tx, record) => {
      const row = await tx.selectFrom('users').selectAll().where('id', '=', id).executeTakeFirst();
      if (row === undefined) throw notFound(`user "${id}" not found`);
      const next = { ...row, ...set, updated_at: this.ctx.now() };
      await tx
        .updateTable('users')
        .set({ ...set, updated_at: next.updated_at })
        .where('id', '=', id)
        .execute();
      await record('user', id, 'update');
      return toUser(next);
    });
  }

  /**
   * Deletes the user with its external identity links and, in the same transaction, revokes
   * every live session of theirs. It records the one change ('user', id, 'delete'), not one per session: a reader of the feed
   * treats a deleted user's sessions as revoked (the next snapshot has neither).
   */
  delete(id: string): Promise<void> {
    return this.ctx.write('delete user', async (tx, record) => {
      const result = await tx.deleteFrom('users').where('id', '=', id).executeTakeFirst();
      if (result.numDeletedRows === 0n) throw notFound(`user "${id}" not found`);
      await tx.deleteFrom('external_identities').where('user_id', '=', id).execute();
      await tx
        .updateTable('sessions')
        .set({ revoked_at: this.ctx.now() })
        .where('user_id', '=', id)
        .where('revoked_at', 'is', null)
        .execute();
      await record('user', id, 'delete');
    });
  }
}

export class KyselySessionRepo implements SessionRepo {
  constructor(private readonly ctx: RepoContext) {}

  list(filter: { userId?: string } = {}): Promise<SessionRecord[]> {
    return this.ctx.read('list sessions', async (db) => {
      let query = db.selectFrom('sessions').selectAll();
      if (filter.userId !== undefined) query = query.where('user_id', '=', filter.userId);
      return (await query.orderBy('created_at').orderBy('id').execute()).map(toSession);
    });
  }

  get(id: string): Promise<SessionRecord | undefined> {
    return this.ctx.read('get session', async (db) => {
      const row = await db.selectFrom('sessions').selectAll().where('id', '=', id).executeTakeFirst();
      return row === undefined ? undefined : toSession(row);
    });
  }

  findBySecretHash(secretHash: string): Promise<SessionRecord | undefined> {
    return this.ctx.read('find session', async (db) => {
      const row = await db.selectFrom('sessions').selectAll().where('secret_hash', '=', secretHash).executeTakeFirst();
      return row === undefined ? undefined : toSession(row);
    });
  }

  /**
   * Throws PosternError 'not_found' (no such user), 'forbidden' (user disabled), 'conflict'
   * (secret hash taken) or 'bad_request'. The user check is in the write transaction, so a
   * session can never outlive a concurrent user delete unrevoked.
   */
  async create(input: NewSession): Promise<SessionRecord> {
    if (!sessionKinds.has(input.kind)) throw badRequest(`session kind "${String(input.kind)}" is not one of browser, cli`);
    const expiresAt = toTimestamp(input.expiresAt, 'expiresAt');
    const provider = checkString(input.provider, 'provider', { nonEmpty: true });
    const clientIp = checkString(input.clientIp, 'clientIp');
    const userAgent = checkString(input.userAgent, 'userAgent');
    const secretHash = checkString(input.secretHash, 'secretHash', { nonEmpty: true });
    return this.ctx.write('create session', async (tx, record) => {
      const user = await tx.selectFrom('users').select(['id', 'disabled_at']).where('id', '=', input.userId).executeTakeFirst();
      if (user === undefined) throw notFound(`user "${input.userId}" not found`);
      if (user.disabled_at !== null) throw new PosternError('forbidden', `user "${input.userId}" is disabled`);
      const now = this.ctx.now();
      const row = {
        id: this.ctx.newId('ses_'),
        user_id: user.id,
        kind: input.kind,
        provider,
        client_ip: clientIp,
        user_agent: userAgent,
        secret_hash: secretHash,
        created_at: now,
        last_seen_at: now,
        expires_at: expiresAt,
        revoked_at: null,
      };
      await insertUnique(() => tx.insertInto('sessions').values(row).execute(), 'session already exists');
      await record('session', row.id, 'create');
      return toSession(row);
    });
  }

  /** Moves last_seen_at forward only (an older `at` is ignored); records no change. Throws not_found. */
  async touch(id: string, at: string): Promise<void> {
    const seenAt = toTimestamp(at, 'at');
    return this.ctx.writeUnlogged('touch session', async (tx) => {
      const result = await tx
        .updateTable('sessions')
        .set({ last_seen_at: seenAt })
        .where('id', '=', id)
        .where('last_seen_at', '<', seenAt)
        .executeTakeFirst();
      if (result.numUpdatedRows > 0n) return;
      const row = await tx.selectFrom('sessions').select('id').where('id', '=', id).executeTakeFirst();
      if (row === undefined) throw notFound(`session "${id}" not found`);
    });
  }

  /** Revoking twice keeps the first time and records nothing the second time. */
  async revoke(id: string, at: string): Promise<void> {
    const revokedAt = toTimestamp(at, 'at');
    return this.ctx.write('revoke session', async (tx, record) => {
      const row = await tx.selectFrom('sessions').select(['id', 'revoked_at']).where('id', '=', id).executeTakeFirst();
      if (row === undefined) throw notFound(`session "${id}" not found`);
      if (row.revoked_at !== null) return;
      await tx.updateTable('sessions').set({ revoked_at: revokedAt }).where('id', '=', id).execute();
      await record('session', id, 'update');
    });
  }

  /** Records one ('session', sessionId, 'update') change per session it revoked (none for 0). */
  async revokeAllForUser(userId: string, at: string): Promise<number> {
    const revokedAt = toTimestamp(at, 'at');
    return this.ctx.write('revoke sessions', async (tx, record) => {
      const live = await tx
        .selectFrom('sessions')
        .select('id')
        .where('user_id', '=', userId)
        .where('revoked_at', 'is', null)
        .orderBy('created_at')
        .orderBy('id')
        .execute();
      if (live.length === 0) return 0;
      // Logged writers are serialized, so exactly the rows read above are revoked here.
      await tx
        .updateTable('sessions')
        .set({ revoked_at: revokedAt })
        .where('user_id', '=', userId)
        .where('revoked_at', 'is', null)
        .execute();
      for (const { id } of live) await record('session', id, 'update');
      return live.length;
    });
  }
}

export class KyselySessionGrantRepo implements SessionGrantRepo {
  constructor(private readonly ctx: RepoContext) {}

  /**
   * Throws PosternError 'not_found' (no such session), 'unauthenticated' (session revoked),
   * 'conflict' (secret hash taken) or 'bad_request' (socket name).
   */
  async create(input: { sessionId: string; socket: string; secretHash: string }): Promise<SessionGrantRecord> {
    const socket = checkSocketName(input.socket);
    const secretHash = checkString(input.secretHash, 'secretHash', { nonEmpty: true });
    return this.ctx.write('create session grant', async (tx, record) => {
      const session = await tx
        .selectFrom('sessions')
        .select(['id', 'revoked_at'])
        .where('id', '=', input.sessionId)
        .executeTakeFirst();
      if (session === undefined) throw notFound(`session "${input.sessionId}" not found`);
      if (session.revoked_at !== null) throw new PosternError('unauthenticated', `session "${input.sessionId}" is revoked`);
      const row = {
        id: this.ctx.newId('sg_'),
        session_id: session.id,
        socket,
        secret_hash: secretHash,
        created_at: this.ctx.now(),
      };
      await insertUnique(() => tx.insertInto('session_grants').values(row).execute(), 'session grant already exists');
      await record('session_grant', row.id, 'create');
      return toSessionGrant(row);
    });
  }

  list(): Promise<SessionGrantRecord[]> {
    return this.ctx.read('list session grants', async (db) =>
      (await db.selectFrom('session_grants').selectAll().orderBy('created_at').orderBy('id').execute()).map(toSessionGrant),
    );
  }

  findBySecretHash(secretHash: string): Promise<SessionGrantRecord | undefined> {
    return this.ctx.read('find session grant', async (db) => {
      const row = await db.selectFrom('session_grants').selectAll().where('secret_hash', '=', secretHash).executeTakeFirst();
      return row === undefined ? undefined : toSessionGrant(row);
    });
  }
}

export class KyselyHandoffCodeRepo implements HandoffCodeRepo {
  constructor(private readonly ctx: RepoContext) {}

  /**
   * Records no change. Throws 'not_found' (no such session), 'conflict' (code hash taken) or
   * 'bad_request'. Also prunes codes that expired more than handoffRetentionMs ago.
   */
  async create(input: {
    codeHash: string;
    sessionId: string;
    socket: string;
    returnTo: string;
    expiresAt: string;
  }): Promise<HandoffCodeRecord> {
    const codeHash = checkString(input.codeHash, 'codeHash', { nonEmpty: true });
    const socket = checkSocketName(input.socket);
    const returnTo = checkString(input.returnTo, 'returnTo');
    const expiresAt = toTimestamp(input.expiresAt, 'expiresAt');
    return this.ctx.writeUnlogged('create handoff code', async (tx) => {
      const session = await tx.selectFrom('sessions').select('id').where('id', '=', input.sessionId).executeTakeFirst();
      if (session === undefined) throw notFound(`session "${input.sessionId}" not found`);
      const pruneBefore = new Date(Date.parse(this.ctx.now()) - handoffRetentionMs).toISOString();
      await tx.deleteFrom('handoff_codes').where('expires_at', '<', pruneBefore).execute();
      const row = { code_hash: codeHash, session_id: session.id, socket, return_to: returnTo, expires_at: expiresAt, used_at: null };
      await insertUnique(() => tx.insertInto('handoff_codes').values(row).execute(), 'handoff code already exists');
      return toHandoffCode(row);
    });
  }

  async consume(codeHash: string, socket: string, at: string): Promise<HandoffCodeRecord> {
    const usedAt = toTimestamp(at, 'at');
    return this.ctx.writeUnlogged('consume handoff code', async (tx) => {
      // One conditional UPDATE decides the winner; concurrent consumers see 0 rows. A code
      // presented on another socket is neither used nor burnt.
      const result = await tx
        .updateTable('handoff_codes')
        .set({ used_at: usedAt })
        .where('code_hash', '=', codeHash)
        .where('socket', '=', socket)
        .where('used_at', 'is', null)
        .where('expires_at', '>', usedAt)
        .executeTakeFirst();
      const row = await tx.selectFrom('handoff_codes').selectAll().where('code_hash', '=', codeHash).executeTakeFirst();
      if (result.numUpdatedRows === 0n || row === undefined) {
        if (row === undefined || row.socket !== socket) throw new PosternError('token_invalid', 'sign-in code is not valid');
        if (row.used_at !== null) throw new PosternError('token_used', 'sign-in code has already been used');
        throw new PosternError('token_expired', `sign-in code expired at ${row.expires_at}`);
      }
      return toHandoffCode(row);
    });
  }
}
