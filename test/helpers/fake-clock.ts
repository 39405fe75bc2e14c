// The one fake clock of the tests: time stands still until a test moves it, and moving it fires
// the timers that fall due, in the order they are due, as real time would.
import type { Clock } from '../../src/clock.js';

export interface FakeTimer {
  readonly fn: () => void;
  /** When it fires next (clock milliseconds). */
  at: number;
  /** The period of an interval; undefined for a one-shot timeout. */
  readonly every: number | undefined;
  readonly seq: number;
  cleared: boolean;
  fired: number;
}

/** More timers firing in one advance() than this is a runaway interval, not a test. */
const MAX_FIRES_PER_ADVANCE = 100_000;

export class FakeClock implements Clock {
  #now: number;
  #seq = 0;
  readonly #timers = new Set<FakeTimer>();

  constructor(start = 0) {
    this.#now = start;
  }

  now(): number {
    return this.#now;
  }

  setTimeout(fn: () => void, ms: number): unknown {
    return this.#add(fn, ms, undefined);
  }

  clearTimeout(handle: unknown): void {
    this.#clear(handle);
  }

  setInterval(fn: () => void, ms: number): unknown {
    // Like Node, a period under 1 ms is 1 ms, so an interval can never fire twice at one instant.
    return this.#add(fn, ms, Math.max(1, ms));
  }

  clearInterval(handle: unknown): void {
    this.#clear(handle);
  }

  /** How many timers were ever set (cleared and fired ones included). */
  get created(): number {
    return this.#seq;
  }

  /** The timers still waiting, soonest first. */
  timers(): FakeTimer[] {
    return [...this.#timers].sort((a, b) => a.at - b.at || a.seq - b.seq);
  }

  /** Delays of the timers still waiting, soonest first. */
  pending(): number[] {
    return this.timers().map((t) => t.at - this.#now);
  }

  /** Moves time on by `ms`, firing every timer due by then (those they set too) in order; returns how many fired. */
  advance(ms: number): number {
    if (!(ms >= 0)) throw new RangeError(`advance(${ms}): time only moves forward`);
    const until = this.#now + ms;
    let fired = 0;
    for (let next = this.timers()[0]; next !== undefined && next.at <= until; next = this.timers()[0]) {
      if (++fired > MAX_FIRES_PER_ADVANCE) throw new Error(`advance(${ms}) fired more than ${MAX_FIRES_PER_ADVANCE} timers`);
      this.#fire(next);
    }
    this.#now = until;
    return fired;
  }

  /** Moves time to the soonest timer and fires it; returns the delay it had, or undefined when none waits. */
  fireNext(): number | undefined {
    const next = this.timers()[0];
    if (next === undefined) return undefined;
    const delay = next.at - this.#now;
    this.#fire(next);
    return delay;
  }

  #fire(timer: FakeTimer): void {
    this.#now = timer.at;
    timer.fired++;
    if (timer.every === undefined) this.#timers.delete(timer);
    else timer.at += timer.every;
    timer.fn();
  }

  #add(fn: () => void, ms: number, every: number | undefined): FakeTimer {
    const timer: FakeTimer = { fn, at: this.#now + (every ?? (ms >= 0 ? ms : 0)), every, seq: this.#seq++, cleared: false, fired: 0 };
    this.#timers.add(timer);
    return timer;
  }

  #clear(handle: unknown): void {
    const timer = handle as FakeTimer | undefined;
    if (timer === undefined || !this.#timers.has(timer)) return;
    timer.cleared = true;
    this.#timers.delete(timer);
  }
}
