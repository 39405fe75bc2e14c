// The device-authorization repository of the Kysely store (RFC 8628, `postern login`): a CLI
// polls with its device code while a person approves the user code in a browser. Nothing here
// reaches a snapshot, so every write is unlogged; state changes are single conditional UPDATEs,
// which decide races (one decision, exactly one redeemer) on both SQLite and PostgreSQL.

import type { Selectable } from 'kysely';
import { PosternError } from '../errors.js';
import { conflict, insertUnique, notFound } from './kysely-repos.js';
import type { RepoContext } from './kysely-repos.js';
import { checkString, toTimestamp } from './rows.js';
import type { DeviceAuthorizationsTable } from './schema.js';
import type { DeviceAuthorizationRecord, DeviceAuthorizationRepo, DeviceAuthorizationStatus } from './types.js';

/** Expired authorizations are kept this long (so a late poll still reads expired_token), then pruned. */
export const deviceAuthorizationRetentionMs = 24 * 3_600_000;

const statuses: ReadonlySet<string> = new Set<DeviceAuthorizationStatus>(['pending', 'approved', 'denied', 'redeemed']);

export function toDeviceAuthorization(row: Selectable<DeviceAuthorizationsTable>): DeviceAuthorizationRecord {
  if (!statuses.has(row.status)) throw new PosternError('internal', `device authorization ${row.id} has an unknown status "${row.status}"`);
  return {
    id: row.id,
    deviceCodeHash: row.device_code_hash,
    userCode: row.user_code,
    status: row.status as DeviceAuthorizationStatus,
    userId: row.user_id,
    clientName: row.client_name,
    clientIp: row.client_ip,
    codeChallenge: row.code_challenge,
    expiresAt: row.expires_at,
    createdAt: row.created_at,
    lastPolledAt: row.last_polled_at,
  };
}

export class KyselyDeviceAuthorizationRepo implements DeviceAuthorizationRepo {
  constructor(private readonly ctx: RepoContext) {}

  /** Throws 'conflict' when the device code hash is taken or the user code is pending already. Prunes long-expired rows. */
  async create(input: { deviceCodeHash: string; userCode: string; clientName: string; clientIp: string; expiresAt: string; codeChallenge?: string }): Promise<DeviceAuthorizationRecord> {
    const deviceCodeHash = checkString(input.deviceCodeHash, 'deviceCodeHash', { max: 200, nonEmpty: true });
    const userCode = checkString(input.userCode, 'userCode', { max: 64, nonEmpty: true });
    const clientName = checkString(input.clientName, 'clientName', { max: 200 });
    const clientIp = checkString(input.clientIp, 'clientIp', { max: 100 });
    const codeChallenge = input.codeChallenge === undefined ? null : checkString(input.codeChallenge, 'codeChallenge', { max: 128, nonEmpty: true });
    const expiresAt = toTimestamp(input.expiresAt, 'expiresAt');
    return this.ctx.writeUnlogged('create device authorization', async (tx) => {
      const now = this.ctx.now();
      const pruneBefore = new Date(Date.parse(now) - deviceAuthorizationRetentionMs).toISOString();
      await tx.deleteFrom('device_authorizations').where('expires_at', '<', pruneBefore).execute();
      const row = {
        id: this.ctx.newId('dev_'),
        device_code_hash: deviceCodeHash,
        user_code: userCode,
        status: 'pending',
        user_id: null,
        client_name: clientName,
        client_ip: clientIp,
        code_challenge: codeChallenge,
        expires_at: expiresAt,
        created_at: now,
        last_polled_at: null,
      };
      await insertUnique(() => tx.insertInto('device_authorizations').values(row).execute(), 'device authorization already exists (device or user code taken)');
      return toDeviceAuthorization(row);
    });
  }

  /** The newest authorization with this user code (a code is reused only once its earlier holder left 'pending'). */
  findByUserCode(userCode: string): Promise<DeviceAuthorizationRecord | undefined> {
    return this.ctx.read('find device authorization', async (db) => {
      const row = await db
        .selectFrom('device_authorizations')
        .selectAll()
        .where('user_code', '=', userCode)
        .orderBy('created_at', 'desc')
        .orderBy('id', 'desc')
        .limit(1)
        .executeTakeFirst();
      return row === undefined ? undefined : toDeviceAuthorization(row);
    });
  }

  findByDeviceCodeHash(deviceCodeHash: string): Promise<DeviceAuthorizationRecord | undefined> {
    return this.ctx.read('find device authorization', async (db) => {
      const row = await db.selectFrom('device_authorizations').selectAll().where('device_code_hash', '=', deviceCodeHash).executeTakeFirst();
      return row === undefined ? undefined : toDeviceAuthorization(row);
    });
  }

  async decide(id: string, decision: { status: 'approved'; userId: string } | { status: 'denied' }, at: string): Promise<DeviceAuthorizationRecord> {
    const decidedAt = toTimestamp(at, 'at');
    if (decision.status !== 'approved' && decision.status !== 'denied') throw new PosternError('bad_request', 'a decision is approved or denied');
    const userId = decision.status === 'approved' ? checkString(decision.userId, 'userId', { max: 100, nonEmpty: true }) : null;
    return this.ctx.writeUnlogged('decide device authorization', async (tx) => {
      const result = await tx
        .updateTable('device_authorizations')
        .set({ status: decision.status, user_id: userId })
        .where('id', '=', id)
        .where('status', '=', 'pending')
        .where('expires_at', '>', decidedAt)
        .executeTakeFirst();
      const row = await tx.selectFrom('device_authorizations').selectAll().where('id', '=', id).executeTakeFirst();
      if (row === undefined) throw notFound(`device authorization "${id}" not found`);
      if (result.numUpdatedRows === 0n) {
        if (row.status !== 'pending') throw conflict(`device authorization "${id}" was already ${row.status}`);
        throw conflict(`device authorization "${id}" expired at ${row.expires_at}`);
      }
      return toDeviceAuthorization(row);
    });
  }

  async redeem(id: string, at: string): Promise<DeviceAuthorizationRecord> {
    const redeemedAt = toTimestamp(at, 'at');
    return this.ctx.writeUnlogged('redeem device authorization', async (tx) => {
      const result = await tx
        .updateTable('device_authorizations')
        .set({ status: 'redeemed' })
        .where('id', '=', id)
        .where('status', '=', 'approved')
        .where('expires_at', '>', redeemedAt)
        .executeTakeFirst();
      const row = await tx.selectFrom('device_authorizations').selectAll().where('id', '=', id).executeTakeFirst();
      if (row === undefined) throw notFound(`device authorization "${id}" not found`);
      if (result.numUpdatedRows === 0n) {
        if (row.status !== 'approved') throw conflict(`device authorization "${id}" is ${row.status}, not approved`);
        throw conflict(`device authorization "${id}" expired at ${row.expires_at}`);
      }
      return toDeviceAuthorization(row);
    });
  }

  /**
   * Compare-and-set on last_polled_at, so two concurrent polls never both read the same
   * previous time: the loser retries and sees the winner's poll (and so gets slow_down).
   */
  async poll(id: string, at: string): Promise<string | null> {
    const polledAt = toTimestamp(at, 'at');
    return this.ctx.writeUnlogged('poll device authorization', async (tx) => {
      for (let attempt = 0; attempt < 5; attempt++) {
        const row = await tx.selectFrom('device_authorizations').select('last_polled_at').where('id', '=', id).executeTakeFirst();
        if (row === undefined) throw notFound(`device authorization "${id}" not found`);
        const previous = row.last_polled_at;
        const result = await tx
          .updateTable('device_authorizations')
          .set({ last_polled_at: polledAt })
          .where('id', '=', id)
          .where((eb) => (previous === null ? eb('last_polled_at', 'is', null) : eb('last_polled_at', '=', previous)))
          .executeTakeFirst();
        if (result.numUpdatedRows > 0n) return previous;
      }
      throw new PosternError('conflict', `device authorization "${id}" is being polled too fast`, { retryable: true });
    });
  }
}
