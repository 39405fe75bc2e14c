// The resumable export loop behind the webhook and syslog exporters: read events after the
// stored cursor, hand a batch to the sink, and move the cursor only once the sink has taken it.
// A receiver that is down is retried with capped backoff from the last delivered event, so no
// event is skipped (delivery is at-least-once: a batch whose answer was lost is sent again).
import { backoffDelay } from '../backoff.js';
import type { BackoffPolicy } from '../backoff.js';
import { systemClock } from '../clock.js';
import type { Clock } from '../clock.js';
import { errorMessage, isPosternError, PosternError } from '../errors.js';
import type { AuditEvent, AuditQuery } from './events.js';

export interface AuditSource {
  /** Events in id order, as the store's audit query returns them. */
  list(query: AuditQuery): Promise<readonly AuditEvent[]>;
}

export interface CursorStore {
  /** The id of the last event delivered under this name; 0 when none was. */
  get(name: string): Promise<number>;
  set(name: string, id: number): Promise<void>;
}

export interface AuditSink {
  /** Resolves once the receiver has taken every event; rejects to have the batch sent again. */
  send(events: readonly AuditEvent[]): Promise<void>;
}

export interface ExporterLogger {
  info(obj: object, msg?: string): void;
  warn(obj: object, msg?: string): void;
  error(obj: object, msg?: string): void;
}

export interface AuditExporterOptions {
  /** Names the cursor, and the exporter in logs. */
  readonly name: string;
  readonly source: AuditSource;
  readonly cursors: CursorStore;
  readonly sink: AuditSink;
  readonly logger: ExporterLogger;
  /** Events per send, 1–1000; default 100. */
  readonly batchSize?: number;
  /** How often to look for new events when nobody calls notify(); default 5 s. */
  readonly pollIntervalMs?: number;
  /** Default 500 ms doubling up to 30 s. */
  readonly retry?: BackoffPolicy;
  /** How long stop() waits for a send in flight; default 10 s. */
  readonly stopTimeoutMs?: number;
  readonly clock?: Clock;
  readonly random?: () => number;
}

export interface ExporterStatus {
  readonly running: boolean;
  /** Last delivered event id, once read from the cursor store. */
  readonly cursor: number | undefined;
  /** Consecutive failed attempts; 0 while healthy. */
  readonly failures: number;
}

export const defaultRetry: BackoffPolicy = { baseMs: 500, capMs: 30_000 };

function validate(options: AuditExporterOptions): void {
  const bad = (what: string): never => {
    throw new PosternError('config_invalid', `audit exporter ${options.name}: ${what}`);
  };
  if (options.name.trim() === '') bad('name must not be empty');
  const batch = options.batchSize ?? 100;
  if (!Number.isInteger(batch) || batch < 1 || batch > 1000) bad('batchSize must be an integer from 1 to 1000');
  if (!((options.pollIntervalMs ?? 1) > 0)) bad('pollIntervalMs must be positive');
  if (!((options.stopTimeoutMs ?? 1) >= 0)) bad('stopTimeoutMs must not be negative');
  const retry = options.retry ?? defaultRetry;
  if (!(retry.baseMs > 0 && retry.capMs >= retry.baseMs)) bad('retry needs 0 < baseMs <= capMs');
}

interface Waiter {
  readonly wakesOnNotify: boolean;
  wake(): void;
}

export class AuditExporter {
  private readonly options: AuditExporterOptions;
  private readonly clock: Clock;
  private loop: Promise<void> | undefined;
  private stopping = false;
  private notified = false;
  private waiter: Waiter | undefined;
  private cursor: number | undefined;
  private failures = 0;

  constructor(options: AuditExporterOptions) {
    validate(options);
    this.options = options;
    this.clock = options.clock ?? systemClock;
  }

  /** Starts the loop; called after a stop() that timed out, it keeps the old loop going. */
  start(): void {
    this.stopping = false;
    this.loop ??= this.run().finally(() => {
      this.loop = undefined;
    });
  }

  /** New events were appended: look now instead of at the next poll. */
  notify(): void {
    this.notified = true;
    if (this.waiter?.wakesOnNotify) this.waiter.wake();
  }

  /** Ends the loop; a send in flight is awaited (and its cursor stored) up to stopTimeoutMs. */
  async stop(): Promise<void> {
    const loop = this.loop;
    if (loop === undefined) return;
    this.stopping = true;
    this.waiter?.wake();
    const timeoutMs = this.options.stopTimeoutMs ?? 10_000;
    let timer: unknown;
    const finished = await Promise.race([
      loop.then(() => true),
      new Promise<false>((resolve) => {
        timer = this.clock.setTimeout(() => resolve(false), timeoutMs);
      }),
    ]);
    this.clock.clearTimeout(timer);
    if (!finished) {
      this.options.logger.warn({ exporter: this.options.name, timeoutMs }, 'audit exporter stopped with a send still in flight');
    }
  }

  status(): ExporterStatus {
    return { running: this.loop !== undefined, cursor: this.cursor, failures: this.failures };
  }

  private async run(): Promise<void> {
    const { name, source, cursors, sink, logger } = this.options;
    while (!this.stopping) {
      try {
        this.cursor ??= await cursors.get(name);
        // Cleared before reading, so a notify() during the read or the send is not lost.
        this.notified = false;
        const events = await source.list({ afterId: this.cursor, limit: this.options.batchSize ?? 100 });
        const last = events.at(-1);
        // No new send once stop() was asked for; the events stay for the next run.
        if (this.stopping) break;
        if (last === undefined) {
          await this.wait(this.options.pollIntervalMs ?? 5_000, true);
          continue;
        }
        await sink.send(events);
        this.cursor = last.id;
        if (this.failures > 0) logger.info({ exporter: name, afterFailures: this.failures }, 'audit export resumed');
        this.failures = 0;
        await this.storeCursor(last.id);
      } catch (err) {
        this.failures++;
        const delayMs = backoffDelay(this.failures - 1, this.options.retry ?? defaultRetry, this.options.random ?? Math.random);
        const code = isPosternError(err) ? err.code : undefined;
        logger.warn({ exporter: name, code, err: errorMessage(err), attempt: this.failures, retryInMs: delayMs }, 'audit export failed');
        await this.wait(delayMs, false);
      }
    }
  }

  /**
   * The batch is delivered whatever happens here; a cursor that cannot be stored only means a
   * restart sends these events again, so it is logged and the loop goes on.
   */
  private async storeCursor(id: number): Promise<void> {
    try {
      await this.options.cursors.set(this.options.name, id);
    } catch (err) {
      this.options.logger.error({ exporter: this.options.name, cursor: id, err: errorMessage(err) }, 'audit export cursor not stored');
    }
  }

  /** Sleeps on the injected clock; stop() always wakes it, notify() only when idle. */
  private wait(ms: number, wakesOnNotify: boolean): Promise<void> {
    if (this.stopping || (wakesOnNotify && this.notified)) return Promise.resolve();
    return new Promise((resolve) => {
      const wake = (): void => {
        this.clock.clearTimeout(timer);
        if (this.waiter === waiter) this.waiter = undefined;
        resolve();
      };
      const waiter: Waiter = { wakesOnNotify, wake };
      const timer = this.clock.setTimeout(wake, ms);
      this.waiter = waiter;
    });
  }
}
