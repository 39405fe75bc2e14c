// The change feed: follows the store's change log and tells subscribers about it — an
// 'init' event first, then batches of changes in revision order. A local commit triggers an
// immediate poll; a timer polls too, which catches writes made by other processes or nodes.

import { systemClock, unrefTimer } from '../clock.js';
import type { Clock } from '../clock.js';
import { PosternError } from '../errors.js';
import { describeCause } from './rows.js';
import { consoleLogger } from './runtime.js';
import type { StoreLogger } from './runtime.js';
import type { Change, Store } from './types.js';

export type FeedEvent =
  | { readonly type: 'init'; readonly revision: number }
  | { readonly type: 'changes'; readonly revision: number; readonly changes: readonly Change[] };

/** A listener that throws (or returns a rejected promise) is logged and unsubscribed. */
export type FeedListener = (event: FeedEvent) => void | Promise<void>;

/** What consumers of a feed need (the SnapshotCache takes this, so tests can feed it directly). */
export interface ChangeSource {
  subscribe(listener: FeedListener): () => void;
}

export interface ChangeFeedOptions {
  /** How often to poll for changes made elsewhere (default 500 ms). */
  readonly pollIntervalMs?: number;
  /** Changes read per query (default 500). */
  readonly batchSize?: number;
  readonly clock?: Clock;
  readonly logger?: StoreLogger;
}

interface Subscriber {
  readonly listener: FeedListener;
}

type FeedState = 'new' | 'starting' | 'running' | 'stopped';

export class ChangeFeed implements ChangeSource {
  readonly #store: Store;
  readonly #pollIntervalMs: number;
  readonly #batchSize: number;
  readonly #clock: Clock;
  readonly #logger: StoreLogger;
  readonly #subscribers = new Set<Subscriber>();
  #state: FeedState = 'new';
  #revision = 0;
  #timer: unknown;
  #polling: Promise<void> | undefined;
  #pollAgain = false;
  #failing = false;
  #unlistenLocal: (() => void) | undefined;

  constructor(store: Store, options: ChangeFeedOptions = {}) {
    const pollIntervalMs = options.pollIntervalMs ?? 500;
    const batchSize = options.batchSize ?? 500;
    if (!Number.isFinite(pollIntervalMs) || pollIntervalMs <= 0) {
      throw new PosternError('config_invalid', 'change feed pollIntervalMs must be a positive number');
    }
    if (!Number.isInteger(batchSize) || batchSize < 1 || batchSize > 10_000) {
      throw new PosternError('config_invalid', 'change feed batchSize must be an integer from 1 to 10000');
    }
    this.#store = store;
    this.#pollIntervalMs = pollIntervalMs;
    this.#batchSize = batchSize;
    this.#clock = options.clock ?? systemClock;
    this.#logger = options.logger ?? consoleLogger;
  }

  /** The last revision delivered to subscribers. */
  get revision(): number {
    return this.#revision;
  }

  get running(): boolean {
    return this.#state === 'running';
  }

  /** Reads the current revision, sends 'init' to subscribers, then follows the log. */
  async start(): Promise<void> {
    if (this.#state !== 'new') throw new PosternError('internal', 'change feed can only be started once');
    this.#state = 'starting';
    try {
      this.#revision = await this.#store.currentRevision();
    } catch (err) {
      if (this.#state === 'starting') this.#state = 'new';
      throw err;
    }
    if (this.#state !== 'starting') return; // stopped while starting
    this.#state = 'running';
    this.#unlistenLocal = this.#store.onLocalChange(() => {
      void this.pollNow();
    });
    for (const subscriber of [...this.#subscribers]) this.#deliver(subscriber, this.#init());
    this.#schedule();
  }

  /**
   * Adds a listener. When the feed is running it receives 'init' (at the last delivered
   * revision) synchronously, before this returns; otherwise when the feed starts.
   */
  subscribe(listener: FeedListener): () => void {
    const subscriber: Subscriber = { listener };
    this.#subscribers.add(subscriber);
    if (this.#state === 'running') this.#deliver(subscriber, this.#init());
    return () => {
      this.#subscribers.delete(subscriber);
    };
  }

  /**
   * Polls now; resolves when a poll that started after this call has finished. Never
   * rejects: errors are logged and the next tick retries.
   */
  pollNow(): Promise<void> {
    if (this.#state !== 'running') return Promise.resolve();
    if (this.#polling !== undefined) {
      this.#pollAgain = true;
      return this.#polling;
    }
    this.#clearTimer();
    this.#polling = this.#pollLoop();
    return this.#polling;
  }

  /** Stops polling and waits for a poll in flight; subscribers stay registered but hear nothing more. */
  async stop(): Promise<void> {
    this.#state = 'stopped';
    this.#clearTimer();
    this.#unlistenLocal?.();
    this.#unlistenLocal = undefined;
    await this.#polling;
  }

  async #pollLoop(): Promise<void> {
    try {
      do {
        this.#pollAgain = false;
        await this.#pollOnce();
      } while (this.#pollAgain && this.#state === 'running');
    } finally {
      this.#polling = undefined;
      this.#schedule();
    }
  }

  async #pollOnce(): Promise<void> {
    try {
      for (;;) {
        const changes = await this.#store.changesSince(this.#revision, this.#batchSize);
        if (this.#state !== 'running') return;
        const last = changes[changes.length - 1];
        if (last === undefined) break;
        this.#revision = last.revision;
        const event: FeedEvent = { type: 'changes', revision: last.revision, changes: Object.freeze(changes.map((c) => Object.freeze(c))) };
        for (const subscriber of [...this.#subscribers]) this.#deliver(subscriber, event);
        if (changes.length < this.#batchSize) break;
      }
      if (this.#failing) {
        this.#failing = false;
        this.#logger.warn({ revision: this.#revision }, 'change feed recovered');
      }
    } catch (err) {
      if (!this.#failing) {
        this.#failing = true;
        this.#logger.warn({ err: describeCause(err), revision: this.#revision }, 'change feed poll failed; retrying');
      }
    }
  }

  #init(): FeedEvent {
    return { type: 'init', revision: this.#revision };
  }

  #deliver(subscriber: Subscriber, event: FeedEvent): void {
    if (!this.#subscribers.has(subscriber)) return;
    try {
      const result = subscriber.listener(event);
      if (result instanceof Promise) result.catch((err: unknown) => this.#evict(subscriber, err));
    } catch (err) {
      this.#evict(subscriber, err);
    }
  }

  #evict(subscriber: Subscriber, err: unknown): void {
    if (!this.#subscribers.delete(subscriber)) return;
    this.#logger.error({ err: describeCause(err) }, 'change feed listener failed and was unsubscribed');
  }

  #schedule(): void {
    if (this.#state !== 'running' || this.#timer !== undefined || this.#polling !== undefined) return;
    this.#timer = this.#clock.setTimeout(() => {
      this.#timer = undefined;
      void this.pollNow();
    }, this.#pollIntervalMs);
    unrefTimer(this.#timer);
  }

  #clearTimer(): void {
    if (this.#timer === undefined) return;
    this.#clock.clearTimeout(this.#timer);
    this.#timer = undefined;
  }
}
