// The recording sink with a fake clock and a fake store: chunks cut every second or at the byte
// threshold, gzip'd asciicast lines with times since the start, UTF-8 never split, input kept
// only when asked, the size cap audited, and a slow or failing store never blocking the producer
// (retried in order, and past the queue bound dropped with a logged, audited reason).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { gunzipSync, gzipSync } from 'node:zlib';
import { createRecordingSink } from '../../src/reporting/recording-sink.js';
import type { RecordingSinkOptions, RecordingWriter } from '../../src/reporting/recording-sink.js';
import { parseEventLine } from '../../src/reporting/asciicast.js';
import type { RecordingMeta } from '../../src/reporting/recording.js';
import type { NewAuditEvent } from '../../src/reporting/events.js';
import { PosternError } from '../../src/errors.js';
import { FakeClock } from '../helpers/fake-clock.js';

const START = Date.parse('2026-03-01T09:00:00Z');

class FakeStore implements RecordingWriter {
  readonly ops: string[] = [];
  readonly chunks: { id: string; seq: number; data: Buffer; bytes: number; truncated: boolean }[] = [];
  readonly ends: { id: string; end: Parameters<RecordingWriter['finish']>[1] }[] = [];
  /** While set, every write waits for it. */
  gate: Promise<void> | undefined;
  failures = 0;

  async #write(what: string): Promise<void> {
    if (this.gate) await this.gate;
    if (this.failures > 0) {
      this.failures--;
      throw new PosternError('store_unavailable', 'database gone', { retryable: true });
    }
    this.ops.push(what);
  }

  async create(input: Parameters<RecordingWriter['create']>[0]): Promise<void> {
    await this.#write(`create ${input.id} ${input.width}x${input.height}`);
  }

  async appendChunk(id: string, chunk: { seq: number; data: Uint8Array; bytes: number; truncated: boolean }): Promise<void> {
    await this.#write(`chunk ${chunk.seq}`);
    this.chunks.push({ id, ...chunk, data: Buffer.from(chunk.data) });
  }

  async touch(id: string): Promise<void> {
    await this.#write(`touch ${id}`);
  }

  async finish(id: string, end: Parameters<RecordingWriter['finish']>[1]): Promise<void> {
    await this.#write('finish');
    this.ends.push({ id, end });
  }

  events(): unknown[] {
    return this.chunks.flatMap((c) => gunzipSync(c.data).toString('utf8').trimEnd().split('\n')).map((line) => parseEventLine(line));
  }
}

function setup(options: Partial<RecordingSinkOptions> = {}) {
  const clock = new FakeClock(START);
  const store = new FakeStore();
  const audit: NewAuditEvent[] = [];
  const logs: string[] = [];
  let ids = 0;
  const sink = createRecordingSink({
    store, audit: (e) => audit.push(e),
    logger: { warn: (_o, msg) => void logs.push(`warn ${msg}`), error: (_o, msg) => void logs.push(`error ${msg}`) },
    clock,
    newId: () => `rec_fake${++ids}aaaaaa`,
    // On the microtask queue, so a test can let the queue run without real time passing.
    compress: async (data) => gzipSync(data),
    ...options,
  });
  const meta: RecordingMeta = {
    connectionId: 'conn_1', sessionId: 'ses_1', socket: 'prod', email: 'ana@corp.example', login: 'support', kind: 'shell',
    width: 80, height: 24, term: 'xterm-256color', title: 'support@prod', startedAt: new Date(START), recordInput: true,
  };
  /** Lets queued promise callbacks run (the fake store answers on the microtask queue). */
  const settle = async () => {
    for (let i = 0; i < 20; i++) await new Promise<void>((resolve) => setImmediate(resolve));
  };
  const at = (ms: number) => new Date(START + ms);
  return { clock, store, audit, logs, sink, meta, settle, at };
}

test('events wait in the buffer until the one-second tick, then go out as one gzip chunk of asciicast lines', async () => {
  const { clock, store, sink, meta, settle, at } = setup();
  const handle = sink.start(meta);
  assert.equal(handle.id, 'rec_fake1aaaaaa');
  handle.output(Buffer.from('$ '), at(100));
  handle.input(Buffer.from('ls\r'), at(1500));
  handle.resize(100, 30, at(1600));
  await settle();
  assert.deepEqual(store.ops, ['create rec_fake1aaaaaa 80x24'], 'nothing but the row before the tick');
  assert.deepEqual(clock.pending(), [1000]);
  clock.fireNext();
  await settle();
  assert.deepEqual(store.ops, ['create rec_fake1aaaaaa 80x24', 'chunk 0']);
  assert.deepEqual(store.events(), [
    { time: 0.1, code: 'o', data: '$ ' },
    { time: 1.5, code: 'i', data: 'ls\r' },
    { time: 1.6, code: 'r', data: '100x30' },
  ]);
  assert.deepEqual([store.chunks[0]!.bytes, store.chunks[0]!.truncated], [5, false]);
  handle.output(Buffer.from('a\r\n'), at(900));
  handle.end({ reason: 'exit', exitStatus: 2 }, at(3000));
  await settle();
  assert.deepEqual(store.ops.slice(2), ['chunk 1', 'finish']);
  assert.deepEqual(store.events().at(-1), { time: 1.6, code: 'o', data: 'a\r\n' }, 'an event stamped earlier keeps the order, never goes back in time');
  assert.deepEqual(store.ends[0]!.end, { endedAt: '2026-03-01T09:00:03.000Z', exitStatus: 2, reason: 'exit', bytes: 8, truncated: false });
  handle.output(Buffer.from('after the end'));
  await sink.flush();
  assert.equal(store.chunks.length, 2, 'events after the end are ignored');
  assert.deepEqual(clock.pending(), [], 'no timer runs once nothing is open');
});

test('a full buffer is cut at once (real gzip); a huge write becomes several bounded events', async () => {
  const { store, sink, meta } = setup({ flushBytes: 1024, compress: undefined });
  const handle = sink.start(meta);
  handle.output(Buffer.alloc(100 * 1024, 'x'));
  await sink.flush();
  const events = store.events() as { data: string }[];
  assert.ok(events.length >= 3, 'split into pieces');
  assert.ok(events.every((e) => e.data.length <= 32 * 1024));
  assert.equal(events.map((e) => e.data).join('').length, 100 * 1024);
});

test('UTF-8 characters split across writes (and between chunks) come out whole; input and output decode apart', async () => {
  const { clock, store, sink, meta, settle } = setup();
  const handle = sink.start(meta);
  const emoji = Buffer.from('🙂');
  const euro = Buffer.from('€');
  handle.output(Buffer.concat([Buffer.from('a'), emoji.subarray(0, 1)]));
  handle.input(euro.subarray(0, 2));
  clock.fireNext();
  handle.output(emoji.subarray(1, 3));
  handle.input(euro.subarray(2));
  handle.output(Buffer.concat([emoji.subarray(3), Buffer.from('b')]));
  handle.output(Buffer.from([0xe2, 0x82]));
  handle.end();
  await settle();
  const events = store.events() as { code: string; data: string }[];
  assert.deepEqual(events.map((e) => [e.code, e.data]), [['o', 'a'], ['i', '€'], ['o', '🙂b'], ['o', '\ufffd']], 'a character cut off by the end reads as one replacement');
  assert.ok(events.every((e) => !e.data.includes('\ufffd') || e.data === '\ufffd'));
});

test('input is kept only when the socket records input', async () => {
  const { store, sink, meta, settle } = setup();
  const handle = sink.start({ ...meta, recordInput: false });
  handle.input(Buffer.from('secret\r'));
  handle.output(Buffer.from('ok'));
  handle.end();
  await settle();
  assert.deepEqual((store.events() as { code: string }[]).map((e) => e.code), ['o']);
  assert.equal(store.ends[0]!.end.bytes, 2);
});

test('the size cap stops the recording (not the session), marks it truncated and is audited once', async () => {
  const { store, sink, meta, settle, audit, logs } = setup({ maxBytes: 10 });
  const handle = sink.start(meta);
  handle.output(Buffer.from('12345678'));
  handle.output(Buffer.from('too long'));
  handle.output(Buffer.from('x'));
  handle.input(Buffer.from('y'));
  handle.end({ reason: 'exit' });
  await settle();
  assert.deepEqual((store.events() as { data: string }[]).map((e) => e.data), ['12345678']);
  assert.deepEqual([store.ends[0]!.end.truncated, store.ends[0]!.end.bytes], [true, 8]);
  assert.equal(audit.length, 1);
  assert.deepEqual([audit[0]!.type, audit[0]!.actor, audit[0]!.connectionId, audit[0]!.details?.recordingId], ['recording.truncated', 'ana@corp.example', 'conn_1', handle.id]);
  assert.match(audit[0]!.reason!, /size cap of 10 bytes/);
  assert.deepEqual(logs, ['warn recording stopped at its size cap']);
});

test('a stalled store never blocks the producer; past the queue bound chunks are dropped, logged and audited, the rest written in order', async () => {
  const { clock, store, sink, meta, settle, audit, logs } = setup({ flushBytes: 1024, maxQueuedBytes: 8 * 1024 });
  let release!: () => void;
  store.gate = new Promise<void>((resolve) => (release = resolve));
  const handle = sink.start(meta);
  for (let i = 0; i < 40; i++) handle.output(Buffer.alloc(1000, 'a'));
  handle.end({ reason: 'exit' });
  assert.equal(store.ops.length, 0, 'every call returned while the store was stalled');
  assert.equal(audit.filter((e) => e.type === 'recording.dropped').length, 1, 'one audit event per recording, not per chunk');
  assert.match(audit[0]!.reason!, /store is too slow/);
  assert.deepEqual(logs, ['error the store is too slow for recordings: events dropped']);
  store.gate = undefined;
  release();
  await settle();
  // Two 1 KB events fill a chunk; four chunks fit the 8 KiB bound, the rest were dropped.
  assert.deepEqual(store.chunks.map((c) => c.seq), [0, 1, 2, 3], 'what was kept, in order and without gaps in seq');
  assert.equal(store.events().length, 8);
  assert.equal(store.ops.at(-1), 'finish');
  assert.equal(store.ends[0]!.end.truncated, true, 'a recording with a gap is marked truncated');
  assert.deepEqual(clock.pending(), []);
});

test('a failing store is retried with backoff, writes keep their order, and flush waits for them', async () => {
  const { clock, store, sink, meta, settle, logs } = setup();
  store.failures = 2;
  const handle = sink.start(meta);
  handle.output(Buffer.from('one'));
  handle.end();
  await settle();
  assert.deepEqual(store.ops, []);
  assert.deepEqual(logs, ['warn recording write failed; retrying']);
  assert.deepEqual(clock.pending(), [250]);
  clock.fireNext();
  await settle();
  assert.deepEqual(clock.pending(), [500], 'the delay doubles');
  const flushed = sink.flush();
  clock.fireNext();
  await flushed;
  assert.deepEqual(store.ops, ['create rec_fake1aaaaaa 80x24', 'chunk 0', 'finish']);
});

test('a store that refuses a write for good (or throws at once) is skipped, not retried forever; the producer never sees it', async () => {
  const { sink, meta, settle, logs } = setup({
    store: {
      create: () => { throw new PosternError('bad_request', 'refused'); },
      appendChunk: async () => { throw new PosternError('not_found', 'gone'); },
      touch: async () => undefined,
      finish: async () => { throw new PosternError('not_found', 'gone'); },
    },
  });
  const handle = sink.start({ ...meta, width: 0, height: -1 });
  handle.output(Buffer.from('x'));
  handle.end();
  await settle();
  assert.deepEqual(logs, ['warn recording write refused; skipped', 'warn recording write refused; skipped', 'warn recording write refused; skipped']);
});

test('a live recording with nothing to say sends a heartbeat; close ends what is open and flushes', async () => {
  const { clock, store, sink, meta, settle } = setup({ heartbeatMs: 3000 });
  const handle = sink.start({ ...meta, width: 0 });
  await settle();
  assert.equal(store.ops[0], 'create rec_fake1aaaaaa 80x24', 'an unknown width gets a usable default');
  for (let i = 0; i < 3; i++) {
    clock.fireNext();
    await settle();
  }
  assert.deepEqual(store.ops.slice(1), [`touch ${handle.id}`]);
  await sink.close('the Postern server stopped');
  assert.deepEqual(store.ends.map((e) => e.end.reason), ['the Postern server stopped']);
});
