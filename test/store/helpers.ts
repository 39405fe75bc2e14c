// Test helpers for the store suites: bounded waits, event collectors, error checks (time comes from test/helpers/fake-clock.ts).

import assert from 'node:assert/strict';
import { isPosternError } from '../../src/errors.js';
import type { ErrorCode } from '../../src/errors.js';
import type { FeedEvent, Store, StoreLogger } from '../../src/store/index.js';

/** Rejects if `promise` has not settled within `ms` (a bound, never a wait for time to pass). */
export async function within<T>(promise: Promise<T>, what: string, ms = 5000): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms waiting for ${what}`)), ms);
  });
  try {
    return await Promise.race([promise, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

/** Collects feed events and lets a test await one that matches. */
export class EventCollector {
  readonly events: FeedEvent[] = [];
  readonly #waiters: Array<{ match: (e: FeedEvent) => boolean; resolve: (e: FeedEvent) => void }> = [];

  readonly listener = (event: FeedEvent): void => {
    this.events.push(event);
    for (const waiter of [...this.#waiters]) {
      if (waiter.match(event)) {
        this.#waiters.splice(this.#waiters.indexOf(waiter), 1);
        waiter.resolve(event);
      }
    }
  };

  next(match: (e: FeedEvent) => boolean, what: string): Promise<FeedEvent> {
    const seen = this.events.find(match);
    if (seen !== undefined) return Promise.resolve(seen);
    return within(new Promise<FeedEvent>((resolve) => this.#waiters.push({ match, resolve })), what);
  }

  untilRevision(revision: number): Promise<FeedEvent> {
    return this.next((e) => e.type === 'changes' && e.revision >= revision, `feed revision ${revision}`);
  }

  changes(): FeedEvent[] {
    return this.events.filter((e) => e.type === 'changes');
  }
}

export class MemoryLogger implements StoreLogger {
  readonly lines: Array<{ level: 'warn' | 'error'; msg: string; obj: Record<string, unknown> }> = [];
  warn(obj: Record<string, unknown>, msg: string): void {
    this.lines.push({ level: 'warn', msg, obj });
  }
  error(obj: Record<string, unknown>, msg: string): void {
    this.lines.push({ level: 'error', msg, obj });
  }
}

export async function rejectsWith(promise: Promise<unknown>, code: ErrorCode, message?: RegExp): Promise<void> {
  await assert.rejects(promise, (err: unknown) => {
    assert.ok(isPosternError(err), `expected a PosternError, got ${String(err)}`);
    assert.equal(err.code, code, `expected code ${code}, got ${err.code}: ${err.message}`);
    if (message !== undefined) assert.match(err.message, message);
    return true;
  });
}

export const isoRe = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$/;

export function inFuture(ms = 3_600_000): string {
  return new Date(Date.now() + ms).toISOString();
}

export interface StoreFixture {
  readonly store: Store;
  /** Closes the store(s) and removes what the fixture created. */
  cleanup(): Promise<void>;
  /** Opens another Store on the same database (another process or node); closed by cleanup. */
  openPeer?: () => Promise<Store>;
}

export type MakeStore = () => Promise<StoreFixture>;

export type StoreCase = (fixture: StoreFixture) => Promise<void>;
