// The audit recorder: the hot paths hand it events and go on; it appends them to the store in
// batches, in order, and keeps what it could not write for the next try, so a slow or briefly
// unavailable database costs no request any latency and loses no event.

import type { NewAuditEvent } from './events.js';

export interface AuditSinkStore {
  append(events: readonly NewAuditEvent[]): Promise<unknown>;
}

export interface RecorderLogger {
  warn(obj: object, msg: string): void;
  error(obj: object, msg: string): void;
}

export interface AuditRecorderOptions {
  readonly store: AuditSinkStore;
  readonly logger: RecorderLogger;
  /** Told after each successful write (exporters wake up). */
  readonly onWritten?: () => void;
  /** How long events may wait to be batched (default 100 ms). */
  readonly flushDelayMs?: number;
  /** Events kept while the store is failing; beyond it the oldest are dropped, loudly (default 100,000). */
  readonly maxBuffered?: number;
  readonly now?: () => Date;
}

const BATCH = 500;

export class AuditRecorder {
  readonly #options: AuditRecorderOptions;
  readonly #now: () => Date;
  #buffer: NewAuditEvent[] = [];
  #timer: NodeJS.Timeout | undefined;
  #flushing: Promise<void> | undefined;
  #failures = 0;

  constructor(options: AuditRecorderOptions) {
    this.#options = options;
    this.#now = options.now ?? (() => new Date());
  }

  /** Queues one event, stamped now unless it carries its own time. */
  record(event: NewAuditEvent): void {
    this.#buffer.push(event.at === undefined ? { ...event, at: this.#now().toISOString() } : event);
    const max = this.#options.maxBuffered ?? 100_000;
    if (this.#buffer.length > max) {
      const dropped = this.#buffer.splice(0, this.#buffer.length - max);
      this.#options.logger.error({ dropped: dropped.length, firstAt: dropped[0]?.at }, 'audit buffer full while the store is failing: oldest events dropped');
    }
    this.#schedule(this.#options.flushDelayMs ?? 100);
  }

  /** Writes everything queued so far (tests and shutdown). */
  async flush(): Promise<void> {
    while (this.#flushing) await this.#flushing;
    if (this.#timer) clearTimeout(this.#timer);
    this.#timer = undefined;
    while (this.#buffer.length > 0) {
      this.#flushing = this.#writeBatch();
      const ok = await this.#flushing.then(() => true, () => false);
      this.#flushing = undefined;
      if (!ok) return;
    }
  }

  #schedule(delayMs: number): void {
    if (this.#timer || this.#flushing) return;
    this.#timer = setTimeout(() => {
      this.#timer = undefined;
      void this.flush().then(() => {
        if (this.#buffer.length > 0) this.#schedule(Math.min(30_000, 250 * 2 ** Math.min(this.#failures, 7)));
      });
    }, delayMs);
    this.#timer.unref();
  }

  async #writeBatch(): Promise<void> {
    const batch = this.#buffer.slice(0, BATCH);
    try {
      await this.#options.store.append(batch);
    } catch (err) {
      this.#failures++;
      if (this.#failures === 1 || this.#failures % 20 === 0) {
        this.#options.logger.warn({ err, queued: this.#buffer.length, failures: this.#failures }, 'audit events not written yet; retrying');
      }
      throw err;
    }
    this.#failures = 0;
    this.#buffer.splice(0, batch.length);
    this.#options.onWritten?.();
  }
}
