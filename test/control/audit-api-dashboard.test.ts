// The audit API as the dashboard uses it, on a real server: newest-first keyset pages with
// nextBefore, free-text search, the export of everything a filter selects (JSONL and CSV with
// proper quoting), and the server-sent-events tail that resumes from Last-Event-ID.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import type { IncomingMessage } from 'node:http';
import { cleanupAll, startServer } from '../helpers/processes.js';
import type { ServerHandle } from '../helpers/processes.js';
import { api, httpsRequest } from '../helpers/https.js';
import { CSV_COLUMNS } from '../../src/control/audit-api.js';
import type { AuditEventView, AuditPage } from '../../src/control/audit-types.js';

let server: ServerHandle;
const NAMES = ['alpha', 'beta', 'gamma', 'delta', 'epsilon'];

before(async () => {
  server = await startServer();
  for (const name of NAMES) assert.equal((await api(server, '/api/v1/sockets', { method: 'POST', body: { name, type: 'http', upstream: 'http://127.0.0.1:9' } })).status, 201);
});
after(cleanupAll);

const page = async (query: string): Promise<AuditPage> => {
  const res = await api(server, `/api/v1/audit?${query}`);
  assert.equal(res.status, 200, res.text);
  return res.json<AuditPage>();
};

/** A minimal RFC 4180 reader, strict about quotes, to check what the export wrote. */
function parseCsv(text: string): string[][] {
  const rows: string[][] = [];
  let row: string[] = [];
  let field = '';
  let quoted = false;
  for (let i = 0; i < text.length; i++) {
    const c = text[i]!;
    if (quoted) {
      if (c === '"' && text[i + 1] === '"') (field += '"', i++);
      else if (c === '"') quoted = false;
      else field += c;
    } else if (c === '"') quoted = true;
    else if (c === ',') (row.push(field), (field = ''));
    else if (c === '\r' && text[i + 1] === '\n') (row.push(field), rows.push(row), (row = []), (field = ''), i++);
    else field += c;
  }
  assert.equal(field + row.join(''), '', 'the export ends with a full line');
  return rows;
}

test('before pages backwards newest first, nextBefore ends at null, filters and free text narrow', async () => {
  const all = (await page('type=admin.change&order=desc&limit=1000')).events;
  assert.ok(all.length >= NAMES.length);
  const seen: number[] = [];
  let cursor: number | null | undefined;
  let first = true;
  while (first || cursor !== null) {
    const next = await page(`type=admin.change&limit=2${first ? '&order=desc' : `&before=${cursor}`}`);
    assert.ok(next.events.length <= 2);
    seen.push(...next.events.map((e) => e.id));
    cursor = next.nextBefore;
    assert.notEqual(cursor, undefined, 'a newest-first page always says where the next one starts');
    first = false;
  }
  assert.deepEqual(seen, all.map((e) => e.id), 'the pages together are the whole filter, newest first, no overlap');
  const beta = await page('q=BETA%20created&order=desc');
  assert.deepEqual(beta.events.map((e) => e.reason), all.filter((e) => /\bbeta\b/.test(e.reason)).map((e) => e.reason));
  assert.equal(beta.events.length, 1);
  assert.equal((await page('q=nosuchword&order=desc')).events.length, 0);
  assert.equal((await api(server, `/api/v1/audit?q=${'x'.repeat(201)}`)).status, 400);
});

test('export streams every event the filter selects as CSV (one column per field, quoted) or JSONL, as a download', async () => {
  const expected = (await page('type=admin.change&limit=1000')).events;
  const csv = await api(server, '/api/v1/audit/export?format=csv&type=admin.change');
  assert.equal(csv.status, 200, csv.text);
  assert.match(String(csv.headers['content-type']), /^text\/csv/);
  assert.match(String(csv.headers['content-disposition']), /^attachment; filename="postern-audit-[\w-]+\.csv"$/);
  const [header, ...rows] = parseCsv(csv.text);
  assert.deepEqual(header, [...CSV_COLUMNS]);
  assert.deepEqual(rows.map((r) => Number(r[0])), expected.map((e) => e.id));
  const byColumn = (row: string[]) => Object.fromEntries(CSV_COLUMNS.map((c, i) => [c, row[i]]));
  const firstRow = byColumn(rows[0]!);
  assert.equal(firstRow.reason, expected[0]!.reason);
  assert.deepEqual(JSON.parse(firstRow.details!), expected[0]!.details, 'details, with its quotes and commas, survive as one field');

  const jsonl = await api(server, '/api/v1/audit/export?format=jsonl&q=gamma');
  assert.equal(jsonl.status, 200);
  assert.match(String(jsonl.headers['content-disposition']), /\.jsonl"$/);
  const lines = jsonl.text.trimEnd().split('\n').map((l) => JSON.parse(l) as AuditEventView);
  assert.deepEqual(lines.map((e) => e.id), (await page('q=gamma&limit=1000')).events.map((e) => e.id));
  assert.ok(lines.length >= 1);
  assert.equal((await api(server, '/api/v1/audit/export?since=yesterday')).status, 400, 'a bad filter is a problem, not a cut-off download');
});

/** Reads server-sent events from `res` until `done` says so (bounded). */
function readEvents(res: IncomingMessage, done: (events: AuditEventView[]) => boolean, what: string): Promise<{ events: AuditEventView[]; ids: string[] }> {
  return new Promise((resolve, reject) => {
    const events: AuditEventView[] = [];
    const ids: string[] = [];
    let buffer = '';
    const timer = setTimeout(() => (res.destroy(), reject(new Error(`timed out waiting for ${what}; got ${JSON.stringify(events.map((e) => e.reason))}`))), 10_000);
    res.setEncoding('utf8');
    res.on('data', (chunk: string) => {
      buffer += chunk;
      let end: number;
      while ((end = buffer.indexOf('\n\n')) !== -1) {
        const frame = buffer.slice(0, end);
        buffer = buffer.slice(end + 2);
        const data = /^data: (.*)$/m.exec(frame)?.[1];
        const id = /^id: (.*)$/m.exec(frame)?.[1];
        if (data !== undefined) events.push(JSON.parse(data) as AuditEventView);
        if (id !== undefined) ids.push(id);
      }
      if (done(events)) (clearTimeout(timer), res.destroy(), resolve({ events, ids }));
    });
    res.on('error', () => undefined);
  });
}

test('the event stream tails new events as server-sent events and resumes from Last-Event-ID', async () => {
  const newest = (await page('type=admin.change&order=desc&limit=1')).events[0]!;
  const open = (headers: Record<string, string>, query: string) => httpsRequest({ port: server.port, ca: server.caPem, path: `/api/v1/audit/events?${query}`, headers: { accept: 'text/event-stream', authorization: `Bearer ${server.adminToken}`, ...headers } });
  const live = await open({}, `type=admin.change&after=${newest.id}`);
  assert.equal(live.statusCode, 200);
  assert.match(String(live.headers['content-type']), /^text\/event-stream/);
  const arrived = readEvents(live, (events) => events.some((e) => /zeta/.test(e.reason)), 'the new socket\'s event');
  assert.equal((await api(server, '/api/v1/sockets', { method: 'POST', body: { name: 'zeta', type: 'http', upstream: 'http://127.0.0.1:9' } })).status, 201);
  const { events, ids } = await arrived;
  assert.ok(events.every((e) => e.type === 'admin.change' && e.id > newest.id));
  assert.deepEqual(ids, events.map((e) => String(e.id)), 'each frame carries its event id');

  const beta = (await page('q=beta&type=admin.change')).events[0]!;
  const resumed = await open({ 'last-event-id': String(beta.id) }, 'type=admin.change&after=0');
  const again = await readEvents(resumed, (got) => got.some((e) => /zeta/.test(e.reason)), 'the resumed tail');
  assert.ok(again.events[0]!.id > beta.id, 'Last-Event-ID wins over after');
  assert.equal(again.events.some((e) => /\bbeta\b/.test(e.reason)), false);

  const bad = await open({}, 'since=yesterday');
  assert.equal(bad.statusCode, 400);
  bad.destroy();
});
