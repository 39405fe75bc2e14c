// A fake clock for the exporter: timers fire only when a test advances time.
import type { ExporterClock } from '../../../src/reporting/exporter.js';

interface FakeTimer {
  readonly fn: () => void;
  readonly at: number;
  done: boolean;
}

export class FakeClock implements ExporterClock {
  now = 0;
  private readonly timers: FakeTimer[] = [];

  setTimeout(fn: () => void, ms: number): unknown {
    const timer: FakeTimer = { fn, at: this.now + ms, done: false };
    this.timers.push(timer);
    return timer;
  }

  clearTimeout(handle: unknown): void {
    if (handle !== undefined) (handle as FakeTimer).done = true;
  }

  /** Delays of the timers still waiting, soonest first. */
  pending(): number[] {
    return this.live().map((t) => t.at - this.now);
  }

  /** Moves time to the soonest timer and fires it; returns the delay it had, or undefined. */
  fireNext(): number | undefined {
    const next = this.live()[0];
    if (next === undefined) return undefined;
    const delay = next.at - this.now;
    this.now = next.at;
    next.done = true;
    next.fn();
    return delay;
  }

  private live(): FakeTimer[] {
    return this.timers.filter((t) => !t.done).sort((a, b) => a.at - b.at);
  }
}
