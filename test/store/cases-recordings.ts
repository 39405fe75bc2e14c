// Store suite cases for recordings: rows and filters, paging newest first, binary chunks in
// order and idempotent per seq, ended recordings closed to writes, a peer store (another control
// node) reading what one wrote, and the real sink writing through to a cast read back.

import assert from 'node:assert/strict';
import { gunzipSync, gzipSync } from 'node:zlib';
import type { NewRecording, Store } from '../../src/store/index.js';
import { createRecordingSink } from '../../src/reporting/recording-sink.js';
import { parseEventLine } from '../../src/reporting/asciicast.js';
import { rejectsWith } from './helpers.js';
import type { StoreCase } from './helpers.js';

let counter = 0;
export function recordingInput(extra: Partial<NewRecording> = {}): NewRecording {
  counter++;
  return {
    id: `rec_test${String(counter).padStart(4, 'a').replace(/\d/g, (d) => 'abcdefghij'[Number(d)]!)}${'x'.repeat(8)}`,
    connectionId: 'conn_1', sessionId: 'ses_1', socket: 'prod', email: 'Ana@Corp.example', login: 'support', kind: 'shell',
    title: 'support@prod', width: 80, height: 24, term: 'xterm-256color', startedAt: '2026-01-01T10:00:00Z', ...extra,
  };
}

async function castOf(store: Store, id: string): Promise<string> {
  return (await store.recordings.chunks(id, -1, 1000)).map((c) => gunzipSync(c.data).toString('utf8')).join('');
}

export const recordingCases: Record<string, StoreCase> = {
  'recordings: create, get, filters by user, socket, connection, time and liveness, newest first with a cursor; no change recorded': async ({ store }) => {
    const base = await store.currentRevision();
    const a = await store.recordings.create(recordingInput({ startedAt: '2026-01-01T10:00:00Z' }));
    assert.equal(a.email, 'ana@corp.example');
    assert.deepEqual([a.endedAt, a.exitStatus, a.bytes, a.truncated, a.command, a.kind], [null, null, 0, false, '', 'shell']);
    const b = await store.recordings.create(recordingInput({ startedAt: '2026-01-01T11:00:00Z', socket: 'db', kind: 'exec', command: 'uptime', connectionId: 'conn_2' }));
    const c = await store.recordings.create(recordingInput({ startedAt: '2026-01-01T12:00:00Z', email: 'bob@corp.example' }));
    await rejectsWith(store.recordings.create(recordingInput({ id: a.id })), 'conflict');
    await rejectsWith(store.recordings.create(recordingInput({ id: 'nope' })), 'bad_request');
    await rejectsWith(store.recordings.create(recordingInput({ width: 0 })), 'bad_request');
    assert.deepEqual(await store.recordings.get(b.id), b);
    assert.equal(await store.recordings.get('rec_missing'), undefined);
    const ids = (list: { id: string }[]) => list.map((r) => r.id);
    assert.deepEqual(ids(await store.recordings.list()), [c.id, b.id, a.id]);
    assert.deepEqual(ids(await store.recordings.list({ email: 'ANA@corp.example' })), [b.id, a.id]);
    assert.deepEqual(ids(await store.recordings.list({ socket: 'db' })), [b.id]);
    assert.deepEqual(ids(await store.recordings.list({ connectionId: 'conn_2' })), [b.id]);
    assert.deepEqual(ids(await store.recordings.list({ since: '2026-01-01T11:00:00Z', until: '2026-01-01T12:00:00Z' })), [b.id]);
    assert.deepEqual(ids(await store.recordings.list({ limit: 2 })), [c.id, b.id]);
    assert.deepEqual(ids(await store.recordings.list({ before: b.id })), [a.id]);
    await store.recordings.finish(b.id, { endedAt: '2026-01-01T11:05:00Z', exitStatus: 3, reason: 'exited', bytes: 10, truncated: false });
    assert.deepEqual(ids(await store.recordings.list({ live: true })), [c.id, a.id]);
    assert.deepEqual(ids(await store.recordings.list({ live: false })), [b.id]);
    await rejectsWith(store.recordings.list({ limit: 0 }), 'bad_request');
    await rejectsWith(store.recordings.list({ before: 'rec_missing' }), 'bad_request');
    assert.equal(await store.currentRevision(), base, 'recordings are bookkeeping, not changes');
  },

  'recordings: chunks are binary, in seq order, idempotent per seq; progress and truncation stick; an ended recording takes no more': async ({ store }) => {
    const rec = await store.recordings.create(recordingInput());
    const binary = Buffer.from([0, 1, 2, 0xff, 0xfe, 0x1f, 0x8b]);
    await store.recordings.appendChunk(rec.id, { seq: 1, data: gzipSync('[0.5,"o","b"]\n'), bytes: 2, truncated: false });
    await store.recordings.appendChunk(rec.id, { seq: 0, data: binary, bytes: 1, truncated: false });
    await store.recordings.appendChunk(rec.id, { seq: 0, data: Buffer.from('retried'), bytes: 1, truncated: false });
    const chunks = await store.recordings.chunks(rec.id, -1);
    assert.deepEqual(chunks.map((c) => c.seq), [0, 1]);
    assert.ok(Buffer.isBuffer(chunks[0]!.data));
    assert.deepEqual(chunks[0]!.data, binary, 'the first write of a seq is kept, bytes exact');
    assert.deepEqual((await store.recordings.chunks(rec.id, 0)).map((c) => c.seq), [1]);
    assert.deepEqual((await store.recordings.chunks(rec.id, -1, 1)).map((c) => c.seq), [0]);
    await store.recordings.appendChunk(rec.id, { seq: 2, data: Buffer.from('x'), bytes: 5, truncated: true });
    await store.recordings.appendChunk(rec.id, { seq: 3, data: Buffer.from('y'), bytes: 6, truncated: false });
    assert.deepEqual([(await store.recordings.get(rec.id))?.bytes, (await store.recordings.get(rec.id))?.truncated], [6, true]);
    await store.recordings.touch(rec.id);
    await store.recordings.finish(rec.id, { endedAt: '2026-01-01T10:10:00Z', reason: 'the user logged out', bytes: 7, truncated: false });
    await store.recordings.finish(rec.id, { endedAt: '2026-01-01T10:20:00Z', reason: 'again', bytes: 9, truncated: false });
    const ended = await store.recordings.get(rec.id);
    assert.deepEqual([ended?.endedAt, ended?.endReason, ended?.bytes, ended?.truncated, ended?.exitStatus], ['2026-01-01T10:10:00.000Z', 'the user logged out', 7, true, null]);
    await rejectsWith(store.recordings.appendChunk(rec.id, { seq: 4, data: Buffer.from('z'), bytes: 8, truncated: false }), 'conflict');
    await rejectsWith(store.recordings.touch(rec.id), 'conflict');
    await rejectsWith(store.recordings.appendChunk('rec_missingxxxx', { seq: 0, data: Buffer.from('z'), bytes: 1, truncated: false }), 'not_found');
    await rejectsWith(store.recordings.finish('rec_missingxxxx', { endedAt: '2026-01-01T10:10:00Z', bytes: 0, truncated: false }), 'not_found');
    await rejectsWith(store.recordings.finish(rec.id, { endedAt: '2026-01-01T10:10:00Z', bytes: 0, truncated: false, exitStatus: 300 }), 'bad_request');
    await rejectsWith(store.recordings.chunks(rec.id, -2), 'bad_request');
  },

  'recordings: the real sink writes through the store; a peer store (another node) reads the cast as it grows and when it ends': async ({ store, openPeer }) => {
    const audit: unknown[] = [];
    const sink = createRecordingSink({ store: store.recordings, audit: (e) => audit.push(e), logger: { warn() {}, error() {} } });
    const startedAt = new Date('2026-01-01T10:00:00Z');
    const handle = sink.start({ connectionId: 'conn_sink', socket: 'prod', email: 'ana@corp.example', login: 'support', kind: 'shell', width: 100, height: 30, term: 'xterm', title: 'support@prod', startedAt, recordInput: true });
    handle.input(Buffer.from('echo héllo\r'), new Date(startedAt.getTime() + 500));
    const euro = Buffer.from('€');
    handle.output(euro.subarray(0, 1), new Date(startedAt.getTime() + 700));
    handle.output(Buffer.concat([euro.subarray(1), Buffer.from(' héllo\r\n')]), new Date(startedAt.getTime() + 800));
    await sink.flush();
    const reader = openPeer ? await openPeer() : store;
    const live = await reader.recordings.get(handle.id);
    assert.equal(live?.endedAt, null);
    assert.equal(live?.bytes, Buffer.byteLength('echo héllo\r€ héllo\r\n'));
    handle.resize(120, 40, new Date(startedAt.getTime() + 1000));
    handle.end({ reason: 'exit', exitStatus: 0 }, new Date(startedAt.getTime() + 2000));
    await sink.flush();
    const events = (await castOf(reader, handle.id)).trimEnd().split('\n').map((line) => parseEventLine(line));
    assert.deepEqual(events, [
      { time: 0.5, code: 'i', data: 'echo héllo\r' },
      { time: 0.8, code: 'o', data: '€ héllo\r\n' },
      { time: 1, code: 'r', data: '120x40' },
    ]);
    const ended = await reader.recordings.get(handle.id);
    assert.deepEqual([ended?.endedAt, ended?.exitStatus, ended?.endReason, ended?.truncated, ended?.width], ['2026-01-01T10:00:02.000Z', 0, 'exit', false, 100]);
    assert.deepEqual(audit, []);
  },
};
