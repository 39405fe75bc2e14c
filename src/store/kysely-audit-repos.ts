// The audit trail and the live-connection registry of the Kysely store. Both are bookkeeping
// that never reaches a snapshot, so they write without the change-log lock — except a kill,
// which is a change on purpose: every edge hears of it through its feed and cuts what it holds.

import { sql } from 'kysely';
import type { Kysely, Selectable } from 'kysely';
import { PG_AUDIT_TSVECTOR } from './audit-search-migration.js';
import { PosternError } from '../errors.js';
import type { RepoContext } from './kysely-repos.js';
import { checkString, parseJsonObject, toTimestamp } from './rows.js';
import type { AuditEventsTable, Database, LiveConnectionsTable, StoreDialect } from './schema.js';
import type { AuditBucket, AuditCountFilter, AuditFilter, AuditRecord, AuditRepo, LiveConnectionRecord, LiveConnectionRepo, NewAuditRecord } from './types.js';

const DEFAULT_LIMIT = 100;
const MAX_LIMIT = 1000;
const MAX_BATCH = 500;
const MAX_DETAILS_BYTES = 16 * 1024;
const MAX_COUNT_SPAN_MS = 24 * 3600_000;

/** Oversized details are cut to a marker rather than refused: an event is never dropped. */
function serializeDetails(details: Readonly<Record<string, unknown>> | undefined): string {
  const text = JSON.stringify(details ?? {});
  return text.length <= MAX_DETAILS_BYTES ? text : JSON.stringify({ truncated: true, bytes: text.length });
}

function toAudit(row: Selectable<AuditEventsTable>): AuditRecord {
  return {
    id: Number(row.id),
    type: row.type,
    at: row.at,
    actor: row.actor,
    socket: row.socket,
    clientIp: row.client_ip,
    country: row.country,
    decision: row.decision,
    rule: row.rule,
    reason: row.reason,
    connectionId: row.connection_id,
    sessionId: row.session_id,
    // A damaged details column reads as none; the event itself stays readable.
    details: parseJsonObject(row.details) ?? {},
  };
}

const MAX_SEARCH_CHARS = 200;
const MAX_SEARCH_WORDS = 8;

/** The words of a free-text search as both full-text indexes tokenise: runs of letters and digits, lower-cased. */
function searchWords(text: string): string[] {
  if (text.length > MAX_SEARCH_CHARS) throw new PosternError('bad_request', `a search is at most ${MAX_SEARCH_CHARS} characters`);
  return [...new Set(text.toLowerCase().match(/[\p{L}\p{N}]+/gu) ?? [])].slice(0, MAX_SEARCH_WORDS);
}

function checkLimit(limit: number | undefined): number {
  if (limit === undefined) return DEFAULT_LIMIT;
  if (!Number.isInteger(limit) || limit < 1 || limit > MAX_LIMIT) throw new PosternError('bad_request', `limit must be an integer from 1 to ${MAX_LIMIT}`);
  return limit;
}

/**
 * The query behind `AuditRepo.list` (tests read its plan). SQLite: with free text the FTS5 table
 * drives the query in rowid order (no sort, it stops at `limit`). PostgreSQL chooses between the
 * GIN index and a backwards primary-key scan by how common the words are. Throws bad_request.
 */
export function auditListQuery(typed: Kysely<Database>, dialect: StoreDialect, filter: AuditFilter) {
  const limit = checkLimit(filter.limit);
  const since = filter.since === undefined ? undefined : toTimestamp(filter.since, 'since');
  const until = filter.until === undefined ? undefined : toTimestamp(filter.until, 'until');
  const words = filter.text === undefined ? [] : searchWords(filter.text);
  const fts = words.length > 0 && dialect === 'sqlite';
  const key = fts ? 'f.rowid' : 'a.id';
  const db = typed as unknown as Kysely<any>;
  let query = db.selectFrom('audit_events as a').selectAll('a');
  if (fts) {
    query = query.innerJoin('audit_events_fts as f', 'f.rowid', 'a.id')
      .where(sql<boolean>`f.audit_events_fts match ${words.map((w) => `"${w}"*`).join(' ')}`);
  } else if (words.length > 0) {
    query = query.where(sql<boolean>`${PG_AUDIT_TSVECTOR} @@ to_tsquery('simple', ${words.map((w) => `${w}:*`).join(' & ')})`);
  }
  if (filter.afterId !== undefined) query = query.where(key, '>', filter.afterId);
  if (filter.beforeId !== undefined) query = query.where(key, '<', filter.beforeId);
  if (filter.actor !== undefined) query = query.where('a.actor', '=', filter.actor);
  if (filter.socket !== undefined) query = query.where('a.socket', '=', filter.socket);
  if (filter.type !== undefined) query = query.where('a.type', '=', filter.type);
  if (filter.decision !== undefined) query = query.where('a.decision', '=', filter.decision);
  if (since !== undefined) query = query.where('a.at', '>=', since);
  if (until !== undefined) query = query.where('a.at', '<', until);
  return query.orderBy(key, filter.newestFirst === true ? 'desc' : 'asc').limit(limit);
}

export class KyselyAuditRepo implements AuditRepo {
  constructor(private readonly ctx: RepoContext & { readonly dialect: StoreDialect }) {}

  async append(events: readonly NewAuditRecord[]): Promise<AuditRecord[]> {
    if (events.length === 0) return [];
    if (events.length > MAX_BATCH) throw new PosternError('bad_request', `at most ${MAX_BATCH} audit events per append`);
    const rows = events.map((event) => ({
      type: checkString(event.type, 'type', { nonEmpty: true, max: 64 }),
      at: event.at === undefined ? this.ctx.now() : toTimestamp(event.at, 'at'),
      actor: event.actor ?? '',
      socket: event.socket ?? '',
      client_ip: event.clientIp ?? '',
      country: event.country ?? '',
      decision: event.decision ?? '',
      rule: event.rule ?? '',
      reason: event.reason ?? '',
      connection_id: event.connectionId ?? '',
      session_id: event.sessionId ?? '',
      details: serializeDetails(event.details),
    }));
    return this.ctx.writeUnlogged('append audit events', async (tx) =>
      (await tx.insertInto('audit_events').values(rows).returningAll().execute()).map(toAudit).sort((a, b) => a.id - b.id),
    );
  }

  async list(filter: AuditFilter = {}): Promise<AuditRecord[]> {
    const query = auditListQuery(this.ctx.db, this.ctx.dialect, filter);
    return this.ctx.read('list audit events', async () => ((await query.execute()) as Selectable<AuditEventsTable>[]).map(toAudit));
  }

  async countByTime(filter: AuditCountFilter): Promise<AuditBucket[]> {
    const since = Date.parse(toTimestamp(filter.since, 'since'));
    const until = Date.parse(toTimestamp(filter.until, 'until'));
    if (!Number.isInteger(filter.bucketMinutes) || filter.bucketMinutes < 1) throw new PosternError('bad_request', 'bucketMinutes must be a positive integer');
    if (until <= since || until - since > MAX_COUNT_SPAN_MS) throw new PosternError('bad_request', 'until must be after since, at most 24 hours later');
    const bucketMs = filter.bucketMinutes * 60_000;
    const buckets = Array.from({ length: Math.ceil((until - since) / bucketMs) }, (_, i) => ({ start: new Date(since + i * bucketMs).toISOString(), allow: 0, deny: 0 }));
    // Timestamps are stored as ISO 8601 text, so the first 16 characters name the minute in
    // either dialect: the database groups by minute (at most 1440 rows per decision), this folds minutes into buckets.
    const minute = sql<string>`substr(at, 1, 16)`;
    const rows = await this.ctx.read('count audit events over time', async (db) => {
      let query = db.selectFrom('audit_events')
        .select([minute.as('minute'), 'decision', (eb) => eb.fn.countAll<number | string>().as('n')])
        .where('at', '>=', new Date(since).toISOString()).where('at', '<', new Date(until).toISOString())
        // `|| ''` keeps the planner on the time range: without statistics SQLite would rather walk
        // the (type, id) or (decision, id) index, i.e. every such event ever recorded.
        .where(sql<string>`decision || ''`, 'in', ['allow', 'deny']);
      if (filter.types !== undefined) {
        if (filter.types.length === 0) return [];
        query = query.where(sql<string>`type || ''`, 'in', [...filter.types]);
      }
      return query.groupBy([minute, 'decision']).execute();
    });
    for (const row of rows) {
      const index = Math.max(0, Math.floor((Date.parse(`${row.minute}:00.000Z`) - since) / bucketMs));
      const bucket = buckets[Math.min(index, buckets.length - 1)];
      if (bucket && (row.decision === 'allow' || row.decision === 'deny')) bucket[row.decision] += Number(row.n);
    }
    return buckets;
  }

  cursor(exporter: string): Promise<number> {
    return this.ctx.read('read export cursor', async (db) => {
      const row = await db.selectFrom('export_cursors').select('last_id').where('name', '=', exporter).executeTakeFirst();
      return row === undefined ? 0 : Number(row.last_id);
    });
  }

  async setCursor(exporter: string, id: number): Promise<void> {
    checkString(exporter, 'exporter', { nonEmpty: true, max: 100 });
    if (!Number.isInteger(id) || id < 0) throw new PosternError('bad_request', 'an export cursor is a non-negative integer');
    const updated_at = this.ctx.now();
    await this.ctx.writeUnlogged('save export cursor', async (tx) => {
      await tx.insertInto('export_cursors').values({ name: exporter, last_id: id, updated_at })
        .onConflict((oc) => oc.column('name').doUpdateSet({ last_id: id, updated_at }))
        .execute();
    });
  }
}

function toLive(row: Selectable<LiveConnectionsTable>): LiveConnectionRecord {
  return {
    id: row.id,
    edgeId: row.edge_id,
    protocol: row.protocol,
    socket: row.socket,
    userId: row.user_id,
    email: row.email,
    sessionId: row.session_id,
    clientIp: row.client_ip,
    country: row.country,
    startedAt: row.started_at,
    bytesUp: Number(row.bytes_up),
    bytesDown: Number(row.bytes_down),
    activity: row.activity,
    activitySince: row.activity_since,
    updatedAt: row.updated_at,
  };
}

export class KyselyLiveConnectionRepo implements LiveConnectionRepo {
  constructor(private readonly ctx: RepoContext) {}

  async upsert(rows: readonly Omit<LiveConnectionRecord, 'updatedAt'>[]): Promise<void> {
    if (rows.length === 0) return;
    const updated_at = this.ctx.now();
    await this.ctx.writeUnlogged('save live connections', async (tx) => {
      for (let i = 0; i < rows.length; i += MAX_BATCH) {
        const values = rows.slice(i, i + MAX_BATCH).map((r) => ({
          id: r.id, edge_id: r.edgeId, protocol: r.protocol, socket: r.socket, user_id: r.userId, email: r.email, session_id: r.sessionId,
          client_ip: r.clientIp, country: r.country, started_at: r.startedAt, bytes_up: r.bytesUp, bytes_down: r.bytesDown,
          activity: checkString(r.activity, 'activity', { max: 1000 }), activity_since: r.activitySince === null ? null : toTimestamp(r.activitySince, 'activitySince'), updated_at,
        }));
        await tx.insertInto('live_connections').values(values)
          .onConflict((oc) => oc.column('id').doUpdateSet((eb) => ({
            bytes_up: eb.ref('excluded.bytes_up'), bytes_down: eb.ref('excluded.bytes_down'), updated_at: eb.ref('excluded.updated_at'),
            activity: eb.ref('excluded.activity'), activity_since: eb.ref('excluded.activity_since'),
          })))
          .execute();
      }
    });
  }

  async remove(ids: readonly string[]): Promise<void> {
    if (ids.length === 0) return;
    await this.ctx.writeUnlogged('remove live connections', async (tx) => {
      for (let i = 0; i < ids.length; i += MAX_BATCH) await tx.deleteFrom('live_connections').where('id', 'in', ids.slice(i, i + MAX_BATCH)).execute();
    });
  }

  async list(filter: { freshSince: string; socket?: string; userId?: string }): Promise<LiveConnectionRecord[]> {
    const freshSince = toTimestamp(filter.freshSince, 'freshSince');
    return this.ctx.read('list live connections', async (db) => {
      let query = db.selectFrom('live_connections').selectAll().where('updated_at', '>=', freshSince);
      if (filter.socket !== undefined) query = query.where('socket', '=', filter.socket);
      if (filter.userId !== undefined) query = query.where('user_id', '=', filter.userId);
      return (await query.orderBy('started_at').orderBy('id').execute()).map(toLive);
    });
  }

  async prune(before: string): Promise<number> {
    const cutoff = toTimestamp(before, 'before');
    return this.ctx.writeUnlogged('prune live connections', async (tx) => {
      const result = await tx.deleteFrom('live_connections').where('updated_at', '<', cutoff).executeTakeFirst();
      return Number(result.numDeletedRows);
    });
  }

  async requestKill(target: string): Promise<void> {
    checkString(target, 'target', { nonEmpty: true, max: 200 });
    await this.ctx.write('request kill', async (_tx, record) => record('kill', target, 'delete'));
  }
}
