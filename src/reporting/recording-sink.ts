// The RecordingSink that streams recordings into the store: each recording keeps a small buffer
// of asciicast event lines, cut into a chunk every second (or at `flushBytes`) and written,
// gzip-compressed, by a queue of its own. Producers never wait: a slow or failing store delays
// the writes, retried with backoff; past `maxQueuedBytes` new chunks are dropped, logged and
// audited. A per-recording size cap stops the recording (not the session) and is audited.

import { StringDecoder } from 'node:string_decoder';
import { gzip } from 'node:zlib';
import { promisify } from 'node:util';
import { backoffDelay } from '../backoff.js';
import { systemClock, unrefTimer } from '../clock.js';
import type { Clock } from '../clock.js';
import { isPosternError } from '../errors.js';
import { newId } from '../store/index.js';
import type { NewRecording, RecordingEnd } from '../store/index.js';
import { castEventLine, eventTime, resizeData, slices } from './asciicast.js';
import type { CastEventCode } from './asciicast.js';
import type { NewAuditEvent } from './events.js';
import type { RecordingHandle, RecordingMeta, RecordingSink } from './recording.js';

/** What the sink needs of the store (store.recordings). */
export interface RecordingWriter {
  create(input: NewRecording): Promise<unknown>;
  appendChunk(id: string, chunk: { seq: number; data: Uint8Array; bytes: number; truncated: boolean }): Promise<void>;
  touch(id: string): Promise<void>;
  finish(id: string, end: RecordingEnd): Promise<void>;
}

export interface RecordingSinkLogger {
  warn(obj: Record<string, unknown>, msg: string): void;
  error(obj: Record<string, unknown>, msg: string): void;
}

export interface RecordingSinkOptions {
  readonly store: RecordingWriter;
  readonly audit: (event: NewAuditEvent) => void;
  readonly logger: RecordingSinkLogger;
  /** Terminal bytes one recording may hold (default 64 MiB); past it the recording stops, marked truncated. */
  readonly maxBytes?: number;
  /** How often buffered events are cut into a chunk (default 1 s: what a crashed edge can lose). */
  readonly flushIntervalMs?: number;
  /** A buffer this big is cut at once (default 64 KiB). */
  readonly flushBytes?: number;
  /** Bytes waiting for the store across all recordings; past it new chunks are dropped (default 16 MiB). */
  readonly maxQueuedBytes?: number;
  /** A live recording with nothing to write still tells the store it is alive this often (default 15 s). */
  readonly heartbeatMs?: number;
  /** Times the flush tick, write retries and the close timeout, and stamps events without a time of their own. */
  readonly clock?: Clock;
  readonly newId?: () => string;
  readonly compress?: (data: Buffer) => Promise<Buffer>;
}

/** The sink with its lifecycle (the server flushes it on shutdown). */
export interface StoreRecordingSink extends RecordingSink {
  /** Cuts every buffer and resolves once the queues are empty (tests, shutdown). */
  flush(): Promise<void>;
  /** Ends every recording still open with `reason`, then flushes; resolves after at most `timeoutMs`. */
  close(reason?: string, timeoutMs?: number): Promise<void>;
}

export const DEFAULT_RECORDING_MAX_BYTES = 64 * 1024 * 1024;
/** No single event grows past this (a huge write becomes several events). */
const SLICE_BYTES = 32 * 1024;
const PERMANENT = new Set(['bad_request', 'not_found', 'conflict']);
/** Write retries: 250 ms doubling to 10 s, without jitter (each recording retries on its own). */
const WRITE_RETRY = { baseMs: 250, capMs: 10_000 };

interface Op {
  readonly what: 'create' | 'chunk' | 'touch' | 'finish';
  /** Bytes it holds while queued. */
  readonly size: number;
  run(): Promise<void>;
}

const gzipAsync = promisify(gzip);

/** Clients may announce 0 (unknown) or absurd sizes; the header needs a real one. */
function terminalSize(value: number, fallback: number): number {
  return Number.isInteger(value) && value >= 1 ? Math.min(value, 10_000) : fallback;
}

export function createRecordingSink(options: RecordingSinkOptions): StoreRecordingSink {
  return new Sink(options);
}

class Sink implements StoreRecordingSink {
  readonly options: RecordingSinkOptions;
  readonly clock: Clock;
  readonly maxBytes: number;
  readonly flushBytes: number;
  readonly compress: (data: Buffer) => Promise<Buffer>;
  readonly active = new Set<Recording>();
  /** Recordings with writes queued (ended ones stay until their queue is empty). */
  readonly writing = new Set<Recording>();
  queuedBytes = 0;
  #tick: unknown;
  #idle: (() => void)[] = [];

  constructor(options: RecordingSinkOptions) {
    this.options = options;
    this.clock = options.clock ?? systemClock;
    this.maxBytes = options.maxBytes ?? DEFAULT_RECORDING_MAX_BYTES;
    this.flushBytes = options.flushBytes ?? 64 * 1024;
    this.compress = options.compress ?? ((data) => gzipAsync(data));
  }

  start(meta: RecordingMeta): RecordingHandle {
    const id = this.options.newId?.() ?? newId('rec_');
    const recording = new Recording(this, id, meta);
    this.active.add(recording);
    recording.enqueue({
      what: 'create', size: 0,
      run: () => this.options.store.create({
        id, connectionId: meta.connectionId, ...(meta.sessionId !== undefined ? { sessionId: meta.sessionId } : {}), socket: meta.socket, email: meta.email,
        login: meta.login.slice(0, 100), kind: meta.kind, ...(meta.command !== undefined ? { command: meta.command.slice(0, 8192) } : {}), title: meta.title.slice(0, 500),
        width: terminalSize(meta.width, 80), height: terminalSize(meta.height, 24), term: meta.term.slice(0, 100), startedAt: meta.startedAt.toISOString(),
      }).then(() => undefined, (err: unknown) => {
        // A retried create whose first try did commit: the row is there.
        if (isPosternError(err, 'conflict')) return;
        throw err;
      }),
    });
    this.#schedule();
    return recording;
  }

  /** Whether a chunk of `size` bytes fits the queue bound now. */
  admits(size: number): boolean {
    return this.queuedBytes + size <= (this.options.maxQueuedBytes ?? 16 * 1024 * 1024);
  }

  ended(recording: Recording): void {
    this.active.delete(recording);
    if (this.active.size > 0 || this.#tick === undefined) return;
    this.clock.clearTimeout(this.#tick);
    this.#tick = undefined;
  }

  drained(recording: Recording): void {
    this.writing.delete(recording);
    if (this.writing.size === 0) for (const wake of this.#idle.splice(0)) wake();
  }

  async flush(): Promise<void> {
    for (const recording of this.active) recording.cut();
    if (this.writing.size === 0) return;
    await new Promise<void>((resolve) => this.#idle.push(resolve));
  }

  async close(reason = 'the Postern server stopped', timeoutMs = 5_000): Promise<void> {
    for (const recording of [...this.active]) recording.end({ reason });
    if (this.#tick !== undefined) this.clock.clearTimeout(this.#tick);
    this.#tick = undefined;
    let timer: unknown;
    const gaveUp = new Promise<boolean>((resolve) => {
      timer = this.clock.setTimeout(() => resolve(true), timeoutMs);
      unrefTimer(timer);
    });
    const late = await Promise.race([this.flush().then(() => false), gaveUp]);
    this.clock.clearTimeout(timer);
    if (late) this.options.logger.error({ recordings: this.writing.size, queuedBytes: this.queuedBytes }, 'recordings not fully written before shutdown');
  }

  /** One timer for the whole sink, running while any recording is open. */
  #schedule(): void {
    if (this.#tick !== undefined) return;
    this.#tick = this.clock.setTimeout(() => {
      this.#tick = undefined;
      const at = this.clock.now();
      for (const recording of this.active) recording.onTick(at, this.options.heartbeatMs ?? 15_000);
      if (this.active.size > 0) this.#schedule();
    }, this.options.flushIntervalMs ?? 1_000);
    unrefTimer(this.#tick);
  }
}

class Recording implements RecordingHandle {
  readonly #sink: Sink;
  readonly #meta: RecordingMeta;
  readonly #startMs: number;
  readonly #decoders = { o: new StringDecoder('utf8'), i: new StringDecoder('utf8') };
  #lines: string[] = [];
  #lineBytes = 0;
  #lastTime = 0;
  #bytes = 0;
  #seq = 0;
  #capped = false;
  #truncated = false;
  #droppedBytes = 0;
  #ended = false;
  #lastWriteMs: number;
  readonly #ops: Op[] = [];
  #running = false;
  #failures = 0;

  constructor(sink: Sink, readonly id: string, meta: RecordingMeta) {
    this.#sink = sink;
    this.#meta = meta;
    this.#startMs = meta.startedAt.getTime();
    this.#lastWriteMs = sink.clock.now();
  }

  output(data: Buffer, at?: Date): void {
    this.#safely(() => this.#data('o', data, at));
  }

  input(data: Buffer, at?: Date): void {
    if (!this.#meta.recordInput) return;
    this.#safely(() => this.#data('i', data, at));
  }

  resize(width: number, height: number, at?: Date): void {
    this.#safely(() => {
      if (this.#ended || this.#capped) return;
      this.#push('r', resizeData(width, height), at);
    });
  }

  end(details: { reason?: string; exitStatus?: number } = {}, at?: Date): void {
    this.#safely(() => {
      if (this.#ended) return;
      for (const code of ['o', 'i'] as const) {
        const rest = this.#decoders[code].end();
        if (rest !== '' && !this.#capped) this.#push(code, rest, at);
      }
      this.cut();
      this.#ended = true;
      this.#sink.ended(this);
      const end: RecordingEnd = {
        endedAt: (at ?? new Date(this.#sink.clock.now())).toISOString(),
        ...(details.exitStatus !== undefined ? { exitStatus: details.exitStatus } : {}),
        reason: (details.reason ?? '').slice(0, 500),
        bytes: this.#bytes,
        truncated: this.#truncated,
      };
      this.enqueue({ what: 'finish', size: 0, run: () => this.#sink.options.store.finish(this.id, end) });
    });
  }

  /** Turns the buffered lines into one chunk on the write queue (or drops it, past the queue bound). */
  cut(): void {
    if (this.#lines.length === 0) return;
    const text = Buffer.from(this.#lines.join(''), 'utf8');
    this.#lines = [];
    this.#lineBytes = 0;
    if (!this.#sink.admits(text.length)) return this.#drop(text.length);
    const chunk = { seq: this.#seq++, bytes: this.#bytes, truncated: this.#truncated };
    let compressed: Buffer | undefined;
    this.enqueue({
      what: 'chunk', size: text.length,
      run: async () => {
        compressed ??= await this.#sink.compress(text);
        await this.#sink.options.store.appendChunk(this.id, { ...chunk, data: compressed });
      },
    });
  }

  onTick(atMs: number, heartbeatMs: number): void {
    if (this.#lines.length > 0) this.cut();
    else if (atMs - this.#lastWriteMs >= heartbeatMs && this.#ops.length === 0) this.enqueue({ what: 'touch', size: 0, run: () => this.#sink.options.store.touch(this.id) });
  }

  enqueue(op: Op): void {
    this.#ops.push(op);
    this.#sink.queuedBytes += op.size;
    this.#sink.writing.add(this);
    this.#pump();
  }

  #data(code: 'o' | 'i', data: Buffer, at: Date | undefined): void {
    if (this.#ended || this.#capped) return;
    const bytes = Buffer.isBuffer(data) ? data : Buffer.from(data);
    if (this.#bytes + bytes.length > this.#sink.maxBytes) return this.#cap();
    this.#bytes += bytes.length;
    for (const piece of slices(bytes, SLICE_BYTES)) {
      // One decoder per direction: a character split between two writes is joined, never split.
      const text = this.#decoders[code].write(piece);
      if (text !== '') this.#push(code, text, at);
    }
  }

  #push(code: CastEventCode, text: string, at: Date | undefined): void {
    this.#lastTime = eventTime(this.#startMs, at?.getTime() ?? this.#sink.clock.now(), this.#lastTime);
    const line = castEventLine(this.#lastTime, code, text);
    this.#lines.push(line);
    this.#lineBytes += line.length;
    if (this.#lineBytes >= this.#sink.flushBytes) this.cut();
  }

  #cap(): void {
    this.#capped = true;
    this.#truncated = true;
    this.cut();
    const { maxBytes } = this.#sink;
    this.#sink.options.logger.warn({ recording: this.id, connection: this.#meta.connectionId, maxBytes }, 'recording stopped at its size cap');
    this.#audit('recording.truncated', `recording ${this.id} stopped at the size cap of ${maxBytes} bytes; the session goes on unrecorded`, { maxBytes });
  }

  #drop(size: number): void {
    const first = this.#droppedBytes === 0;
    this.#droppedBytes += size;
    this.#truncated = true;
    if (!first) return;
    const { queuedBytes } = this.#sink;
    this.#sink.options.logger.error({ recording: this.id, connection: this.#meta.connectionId, queuedBytes }, 'the store is too slow for recordings: events dropped');
    this.#audit('recording.dropped', `part of recording ${this.id} was dropped: the store is too slow (${queuedBytes} bytes waiting)`, { queuedBytes });
  }

  #audit(type: 'recording.truncated' | 'recording.dropped', reason: string, details: Record<string, unknown>): void {
    const meta = this.#meta;
    this.#sink.options.audit({
      type, actor: meta.email, socket: meta.socket, connectionId: meta.connectionId, ...(meta.sessionId !== undefined ? { sessionId: meta.sessionId } : {}),
      reason, details: { recordingId: this.id, login: meta.login, kind: meta.kind, ...details },
    });
  }

  /** Runs the queue's head; on failure retries it later with backoff (writes keep their order). */
  #pump(): void {
    if (this.#running) return;
    const op = this.#ops[0];
    if (!op) return this.#sink.drained(this);
    this.#running = true;
    // A store that throws at once is a failure like any other, never the producer's problem.
    new Promise<void>((resolve) => resolve(op.run())).then(() => {
      this.#failures = 0;
      this.#lastWriteMs = this.#sink.clock.now();
      this.#done(op);
    }, (err: unknown) => {
      const permanent = isPosternError(err) && PERMANENT.has(err.code);
      this.#failures++;
      if (permanent || this.#failures === 1 || this.#failures % 20 === 0) {
        this.#sink.options.logger.warn({ err, recording: this.id, op: op.what, failures: this.#failures, queued: this.#ops.length }, permanent ? 'recording write refused; skipped' : 'recording write failed; retrying');
      }
      if (permanent) return this.#done(op);
      const retry = this.#sink.clock.setTimeout(() => {
        this.#running = false;
        this.#pump();
      }, backoffDelay(this.#failures - 1, WRITE_RETRY, () => 1));
      unrefTimer(retry);
    });
  }

  #done(op: Op): void {
    this.#ops.shift();
    this.#sink.queuedBytes -= op.size;
    this.#running = false;
    this.#pump();
  }

  /** A recording bug must never reach the user's session. */
  #safely(fn: () => void): void {
    try {
      fn();
    } catch (err) {
      this.#sink.options.logger.error({ err, recording: this.id }, 'recording event failed');
    }
  }
}
