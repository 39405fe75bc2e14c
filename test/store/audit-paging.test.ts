// The audit page at scale: 200,000 generated rows in SQLite, and every query the dashboard's audit
// page sends (each filter alone and combined, first page, older pages, resume after an id, free
// text) must be answered from an index — read from EXPLAIN QUERY PLAN, not from timing.

import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import Database from 'better-sqlite3';
import { Kysely, PostgresDialect, SqliteDialect } from 'kysely';
import pg from 'pg';
import { isPosternError } from '../../src/errors.js';
import { openStore, silentLogger } from '../../src/store/index.js';
import type { AuditFilter, Database as StoreDatabase, Store } from '../../src/store/index.js';
import { auditListQuery } from '../../src/store/kysely-audit-repos.js';

const ROWS = 200_000;
const dir = mkdtempSync(join(tmpdir(), 'postern-audit-paging-'));
const file = join(dir, 'store.db');
let store: Store;
let sqlite: Database.Database;
let db: Kysely<StoreDatabase>;

before(async () => {
  store = await openStore(file, { logger: silentLogger });
  sqlite = new Database(file);
  // One statement, one transaction: the FTS triggers index every row as the store's own inserts would be.
  sqlite.exec(`with recursive n(i) as (select 1 union all select i + 1 from n where i < ${ROWS})
    insert into audit_events (type, at, actor, socket, client_ip, country, decision, rule, reason, connection_id, session_id, details)
    select case i % 4 when 0 then 'http.request' when 1 then 'access.denied' when 2 then 'connection.open' else 'admin.change' end,
      strftime('%Y-%m-%dT%H:%M:%fZ', 1767225600 + i, 'unixepoch'), 'user' || (i % 50) || '@corp.example', 'sock' || (i % 20), '10.0.0.1', 'NL',
      case i % 3 when 0 then 'allow' when 1 then 'deny' else '' end, '', 'generated event ' || i, '', '', '{"method":"GET","path":"/p/' || i || '"}'
    from n`);
  db = new Kysely<StoreDatabase>({ dialect: new SqliteDialect({ database: sqlite }) });
});

after(async () => {
  await db?.destroy();
  await store?.close();
  rmSync(dir, { recursive: true, force: true });
});

function planOf(filter: AuditFilter): string[] {
  const query = auditListQuery(db, 'sqlite', filter).compile();
  return (sqlite.prepare(`explain query plan ${query.sql}`).all(...query.parameters) as { detail: string }[]).map((row) => row.detail);
}

const filters: Record<string, AuditFilter> = {
  'no filter': {},
  user: { actor: 'user7@corp.example' },
  socket: { socket: 'sock3' },
  type: { type: 'http.request' },
  decision: { decision: 'deny' },
  'time range': { since: '2026-01-02T00:00:00Z', until: '2026-01-02T06:00:00Z' },
  'user and type': { actor: 'user7@corp.example', type: 'access.denied' },
  'type and decision': { type: 'http.request', decision: 'allow' },
  'socket and decision': { socket: 'sock3', decision: 'deny' },
  'user and time range': { actor: 'user7@corp.example', since: '2026-01-02T00:00:00Z' },
  'free text': { text: 'generated 1234' },
  'free text and decision': { text: 'event', decision: 'deny' },
};
const pages: Record<string, AuditFilter> = {
  'first page, newest first': { newestFirst: true, limit: 100 },
  'an older page': { newestFirst: true, beforeId: 150_000, limit: 100 },
  'resume after an id': { afterId: 1000, limit: 1000 },
};

test(`every audit page query over ${ROWS} rows is answered from an index`, () => {
  for (const [what, filter] of Object.entries(filters)) {
    for (const [page, paging] of Object.entries(pages)) {
      const plan = planOf({ ...filter, ...paging });
      const label = `${what}, ${page}: ${plan.join(' | ')}`;
      const unfilteredNewest = what === 'no filter' && page === 'first page, newest first';
      for (const step of plan) {
        // Only the unfiltered newest page walks the table itself, in rowid order from the end, stopping at the limit.
        if (/^SCAN a\b/.test(step)) assert.ok(unfilteredNewest && step === 'SCAN a', label);
        if (/^SCAN f\b/.test(step)) assert.match(step, /VIRTUAL TABLE INDEX/, label);
        // A time range is read from the `at` index and sorted within it: the range bounds the sort.
        if (/TEMP B-TREE/.test(step)) assert.equal(what.includes('time range') && !what.includes('user'), true, label);
      }
      assert.ok(plan.some((step) => /USING (INDEX|INTEGER PRIMARY KEY|COVERING INDEX)|VIRTUAL TABLE INDEX/.test(step)) || unfilteredNewest, label);
    }
  }
});

test('free text searches through the FTS5 table in rowid order, so a common word stops at the limit', () => {
  const plan = planOf({ text: 'event', newestFirst: true, limit: 100 });
  assert.match(plan[0] ?? '', /^SCAN f VIRTUAL TABLE INDEX/);
  assert.equal(plan.some((step) => /TEMP B-TREE/.test(step)), false, plan.join(' | '));
});

test('keyset pages backwards: newest first, no overlap, each filter applied', async () => {
  const first = await store.audit.list({ decision: 'deny', type: 'access.denied', newestFirst: true, limit: 50 });
  const second = await store.audit.list({ decision: 'deny', type: 'access.denied', newestFirst: true, limit: 50, beforeId: first.at(-1)!.id });
  const ids = [...first, ...second].map((e) => e.id);
  assert.equal(ids.length, 100);
  assert.deepEqual(ids, [...ids].sort((a, b) => b - a), 'strictly newest first across pages');
  assert.equal(new Set(ids).size, 100);
  assert.ok([...first, ...second].every((e) => e.decision === 'deny' && e.type === 'access.denied'));
  assert.equal(first[0]!.id % 12, 1, 'the newest id with i % 4 = 1 and i % 3 = 1');
});

test('free text finds words in reason, actor and details, by prefix, and sees rows the store appends', async () => {
  assert.deepEqual((await store.audit.list({ text: 'generated event 123456' })).map((e) => e.reason), ['generated event 123456']);
  assert.deepEqual((await store.audit.list({ text: 'user7 /p/199957', limit: 5 })).map((e) => e.id), [199_957]);
  assert.equal((await store.audit.list({ text: 'generat 12345', limit: 1000 })).length, 11, '12345 and 123450…123459');
  const [appended] = await store.audit.append([{ type: 'access.denied', actor: 'zed@corp.example', reason: 'quarantined laptop', decision: 'deny' }]);
  assert.deepEqual((await store.audit.list({ text: 'QUARANTINED', decision: 'deny' })).map((e) => e.id), [appended!.id]);
  assert.deepEqual(await store.audit.list({ text: 'quarantined', decision: 'allow' }), []);
});

test('PostgreSQL: the same paging and free text, the words answered by the GIN index', async (t) => {
  const url = process.env.POSTERN_TEST_PG ?? 'postgres://postgres@127.0.0.1:5432/test';
  const schema = `postern_audit_${randomBytes(6).toString('hex')}`;
  let pgStore: Store;
  try {
    pgStore = await openStore(url, { schema, logger: silentLogger, connectTimeoutMs: 5000 });
  } catch (err) {
    if (!isPosternError(err, 'store_unavailable')) throw err;
    const message = `PostgreSQL unreachable (set POSTERN_TEST_PG to change): ${err.message}`;
    if (process.env.CI === 'true') assert.fail(message);
    t.skip(message);
    return;
  }
  const pool = new pg.Pool({ connectionString: url, max: 1, options: `-c search_path=${schema}` });
  try {
    const written = await pgStore.audit.append(Array.from({ length: 300 }, (_, i) => ({
      type: i % 2 === 0 ? 'http.request' : 'access.denied', actor: `user${i % 5}@corp.example`, decision: i % 3 === 0 ? 'deny' : 'allow',
      reason: i === 42 ? 'quarantined laptop' : `generated event ${i}`, details: { path: `/p/${i}` },
    })));
    const first = await pgStore.audit.list({ type: 'access.denied', newestFirst: true, limit: 20 });
    const second = await pgStore.audit.list({ type: 'access.denied', newestFirst: true, limit: 20, beforeId: first.at(-1)!.id });
    const ids = [...first, ...second].map((e) => e.id);
    assert.deepEqual(ids, written.filter((e) => e.type === 'access.denied').map((e) => e.id).reverse().slice(0, 40));
    assert.deepEqual((await pgStore.audit.list({ text: 'QUARANTINED lap' })).map((e) => e.id), [written[42]!.id]);
    assert.deepEqual((await pgStore.audit.list({ text: 'user3 /p/13' })).map((e) => e.id), [13, 133, 138].map((i) => written[i]!.id));
    const query = auditListQuery(new Kysely<StoreDatabase>({ dialect: new PostgresDialect({ pool }) }), 'postgres', { text: 'quarantined', newestFirst: true }).compile();
    const client = await pool.connect();
    try {
      await client.query('set enable_seqscan = off');
      const plan = (await client.query<{ 'QUERY PLAN': string }>(`explain ${query.sql}`, [...query.parameters])).rows.map((r) => r['QUERY PLAN']).join('\n');
      assert.match(plan, /audit_events_text_idx/, plan);
    } finally {
      client.release();
    }
  } finally {
    await pgStore.close();
    await pool.query(`drop schema if exists "${schema}" cascade`);
    await pool.end();
  }
});
