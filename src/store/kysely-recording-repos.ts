// Terminal recordings in the Kysely store: one row per recording, its events in compressed
// chunks appended as the session runs (so a crashed edge loses at most the unwritten tail, and
// any control node on the same PostgreSQL serves them). Bookkeeping: no change-log entries.

import type { Selectable } from 'kysely';
import { PosternError } from '../errors.js';
import type { RepoContext } from './kysely-repos.js';
import { checkString, toTimestamp } from './rows.js';
import type { RecordingChunksTable, RecordingsTable } from './schema.js';
import type { NewRecording, RecordingChunkRecord, RecordingEnd, RecordingFilter, RecordingKind, RecordingRecord, RecordingRepo } from './types.js';

const DEFAULT_LIMIT = 50;
const MAX_LIMIT = 500;
const MAX_CHUNK_BYTES = 4 * 1024 * 1024;
const ID_PATTERN = /^rec_[a-z2-7]{8,40}$/;

function toRecording(row: Selectable<RecordingsTable>): RecordingRecord {
  return {
    id: row.id,
    connectionId: row.connection_id,
    sessionId: row.session_id,
    socket: row.socket,
    email: row.email,
    login: row.login,
    kind: row.kind === 'exec' || row.kind === 'database' ? row.kind : 'shell',
    command: row.command,
    title: row.title,
    width: Number(row.width),
    height: Number(row.height),
    term: row.term,
    startedAt: row.started_at,
    endedAt: row.ended_at,
    exitStatus: row.exit_status === null ? null : Number(row.exit_status),
    bytes: Number(row.bytes),
    truncated: Number(row.truncated) === 1,
    endReason: row.end_reason,
    updatedAt: row.updated_at,
  };
}

function toChunk(row: Selectable<RecordingChunksTable>): RecordingChunkRecord {
  return { recordingId: row.recording_id, seq: Number(row.seq), data: Buffer.from(row.data), createdAt: row.created_at };
}

function checkLimit(limit: number | undefined, fallback: number, max: number): number {
  if (limit === undefined) return fallback;
  if (!Number.isInteger(limit) || limit < 1 || limit > max) throw new PosternError('bad_request', `limit must be an integer from 1 to ${max}`);
  return limit;
}

function checkCount(value: number, field: string): number {
  if (!Number.isSafeInteger(value) || value < 0) throw new PosternError('bad_request', `${field} must be a non-negative integer`);
  return value;
}

function checkSize(value: number, field: string): number {
  if (!Number.isInteger(value) || value < 1 || value > 10_000) throw new PosternError('bad_request', `${field} must be an integer from 1 to 10000`);
  return value;
}

function checkKind(kind: unknown): RecordingKind {
  if (kind !== 'shell' && kind !== 'exec' && kind !== 'database') throw new PosternError('bad_request', 'kind must be shell, exec or database');
  return kind;
}

export class KyselyRecordingRepo implements RecordingRepo {
  constructor(private readonly ctx: RepoContext) {}

  async create(input: NewRecording): Promise<RecordingRecord> {
    if (typeof input.id !== 'string' || !ID_PATTERN.test(input.id)) throw new PosternError('bad_request', 'a recording id looks like rec_…');
    const row = {
      id: input.id,
      connection_id: checkString(input.connectionId, 'connectionId', { nonEmpty: true, max: 100 }),
      session_id: checkString(input.sessionId ?? '', 'sessionId', { max: 100 }),
      socket: checkString(input.socket, 'socket', { max: 63 }),
      email: checkString(input.email, 'email', { max: 254 }).toLowerCase(),
      login: checkString(input.login, 'login', { max: 100 }),
      kind: checkKind(input.kind),
      command: checkString(input.command ?? '', 'command', { max: 8192 }),
      title: checkString(input.title ?? '', 'title', { max: 500 }),
      width: checkSize(input.width, 'width'),
      height: checkSize(input.height, 'height'),
      term: checkString(input.term ?? '', 'term', { max: 100 }),
      started_at: toTimestamp(input.startedAt, 'startedAt'),
      ended_at: null,
      exit_status: null,
      bytes: 0,
      truncated: 0,
      end_reason: '',
      updated_at: this.ctx.now(),
    };
    return this.ctx.writeUnlogged('create recording', async (tx) => toRecording(await tx.insertInto('recordings').values(row).returningAll().executeTakeFirstOrThrow()));
  }

  async appendChunk(id: string, chunk: { seq: number; data: Uint8Array; bytes: number; truncated: boolean }): Promise<void> {
    checkCount(chunk.seq, 'seq');
    checkCount(chunk.bytes, 'bytes');
    if (!(chunk.data instanceof Uint8Array) || chunk.data.length > MAX_CHUNK_BYTES) throw new PosternError('bad_request', `a recording chunk is at most ${MAX_CHUNK_BYTES} bytes`);
    const at = this.ctx.now();
    await this.ctx.writeUnlogged('append recording chunk', async (tx) => {
      const progress = await tx.updateTable('recordings')
        .set({ bytes: chunk.bytes, updated_at: at, ...(chunk.truncated ? { truncated: 1 } : {}) })
        .where('id', '=', id).where('ended_at', 'is', null)
        .executeTakeFirst();
      if (Number(progress.numUpdatedRows) === 0) await this.#refuse(tx, id);
      await tx.insertInto('recording_chunks').values({ recording_id: id, seq: chunk.seq, data: Buffer.from(chunk.data), created_at: at })
        .onConflict((oc) => oc.columns(['recording_id', 'seq']).doNothing())
        .execute();
    });
  }

  async touch(id: string): Promise<void> {
    const at = this.ctx.now();
    await this.ctx.writeUnlogged('touch recording', async (tx) => {
      const result = await tx.updateTable('recordings').set({ updated_at: at }).where('id', '=', id).where('ended_at', 'is', null).executeTakeFirst();
      if (Number(result.numUpdatedRows) === 0) await this.#refuse(tx, id);
    });
  }

  async finish(id: string, end: RecordingEnd): Promise<void> {
    const endedAt = toTimestamp(end.endedAt, 'endedAt');
    checkCount(end.bytes, 'bytes');
    const exitStatus = end.exitStatus ?? null;
    if (exitStatus !== null && (!Number.isInteger(exitStatus) || exitStatus < 0 || exitStatus > 255)) throw new PosternError('bad_request', 'exitStatus must be an integer from 0 to 255');
    const reason = checkString(end.reason ?? '', 'reason', { max: 500 });
    const at = this.ctx.now();
    await this.ctx.writeUnlogged('end recording', async (tx) => {
      const result = await tx.updateTable('recordings')
        .set({ ended_at: endedAt, exit_status: exitStatus, end_reason: reason, bytes: end.bytes, updated_at: at, ...(end.truncated ? { truncated: 1 } : {}) })
        .where('id', '=', id).where('ended_at', 'is', null)
        .executeTakeFirst();
      if (Number(result.numUpdatedRows) > 0) return;
      const row = await tx.selectFrom('recordings').select('id').where('id', '=', id).executeTakeFirst();
      if (!row) throw new PosternError('not_found', `recording "${id}" does not exist`);
    });
  }

  get(id: string): Promise<RecordingRecord | undefined> {
    return this.ctx.read('read recording', async (db) => {
      const row = await db.selectFrom('recordings').selectAll().where('id', '=', id).executeTakeFirst();
      return row === undefined ? undefined : toRecording(row);
    });
  }

  async list(filter: RecordingFilter = {}): Promise<RecordingRecord[]> {
    const limit = checkLimit(filter.limit, DEFAULT_LIMIT, MAX_LIMIT);
    const since = filter.since === undefined ? undefined : toTimestamp(filter.since, 'since');
    const until = filter.until === undefined ? undefined : toTimestamp(filter.until, 'until');
    return this.ctx.read('list recordings', async (db) => {
      let query = db.selectFrom('recordings').selectAll();
      if (filter.email !== undefined) query = query.where('email', '=', filter.email.toLowerCase());
      if (filter.socket !== undefined) query = query.where('socket', '=', filter.socket);
      if (filter.connectionId !== undefined) query = query.where('connection_id', '=', filter.connectionId);
      if (since !== undefined) query = query.where('started_at', '>=', since);
      if (until !== undefined) query = query.where('started_at', '<', until);
      if (filter.live !== undefined) query = query.where('ended_at', filter.live ? 'is' : 'is not', null);
      if (filter.before !== undefined) {
        const cursor = await db.selectFrom('recordings').select(['started_at', 'id']).where('id', '=', filter.before).executeTakeFirst();
        if (!cursor) throw new PosternError('bad_request', `before: recording "${filter.before}" does not exist`);
        query = query.where((eb) => eb.or([
          eb('started_at', '<', cursor.started_at),
          eb.and([eb('started_at', '=', cursor.started_at), eb('id', '<', cursor.id)]),
        ]));
      }
      const rows = await query.orderBy('started_at', 'desc').orderBy('id', 'desc').limit(limit).execute();
      return rows.map(toRecording);
    });
  }

  async chunks(id: string, afterSeq: number, limit?: number): Promise<RecordingChunkRecord[]> {
    if (!Number.isInteger(afterSeq) || afterSeq < -1) throw new PosternError('bad_request', 'afterSeq must be an integer from -1 on');
    const max = checkLimit(limit, 100, 1000);
    return this.ctx.read('read recording chunks', async (db) => {
      const rows = await db.selectFrom('recording_chunks').selectAll().where('recording_id', '=', id).where('seq', '>', afterSeq).orderBy('seq').limit(max).execute();
      return rows.map(toChunk);
    });
  }

  /** Why an update matched nothing: the recording is unknown, or already ended. */
  async #refuse(tx: Parameters<Parameters<RepoContext['writeUnlogged']>[1]>[0], id: string): Promise<never> {
    const row = await tx.selectFrom('recordings').select('id').where('id', '=', id).executeTakeFirst();
    if (!row) throw new PosternError('not_found', `recording "${id}" does not exist`);
    throw new PosternError('conflict', `recording "${id}" has ended`);
  }
}
