// When the connector renews its certificate: at half life (renewalTime), timed on the injected
// clock, and a minute after a renewal that failed. What a renewal does comes in as a function.
import { unrefTimer } from '../clock.js';
import type { Clock } from '../clock.js';
import { renewalTime } from './credentials.js';

/** After a failed renewal, the next try. */
export const RENEWAL_RETRY_MS = 60_000;
/** A certificate already past its half life is renewed soon, but never in a tight loop. */
const MIN_DELAY_MS = 1_000;
/** The longest delay a Node timer keeps; a renewal further off is reached in several waits. */
const MAX_TIMER_MS = 2 ** 31 - 1;

export interface RenewalSchedulerOptions {
  readonly clock: Clock;
  /** The certificate in use now, read again after every renewal. */
  readonly certificatePem: () => string;
  /** Renews the certificate and puts the new one in use; rejects to be retried. */
  readonly renew: () => Promise<void>;
  readonly onFailure: (err: unknown) => void;
}

export class RenewalScheduler {
  #timer: unknown;
  #stopped = false;

  constructor(private readonly options: RenewalSchedulerOptions) {}

  start(): void {
    this.#schedule();
  }

  /** Renews now (instead of at the planned time); a failure is retried in RENEWAL_RETRY_MS. */
  async renewNow(): Promise<void> {
    this.#clear();
    try {
      await this.options.renew();
    } catch (err) {
      this.options.onFailure(err);
      this.#set(() => void this.renewNow(), RENEWAL_RETRY_MS);
      return;
    }
    this.#schedule();
  }

  stop(): void {
    this.#stopped = true;
    this.#clear();
  }

  #schedule(): void {
    const wait = Math.max(MIN_DELAY_MS, renewalTime(this.options.certificatePem()).getTime() - this.options.clock.now());
    if (wait > MAX_TIMER_MS) this.#set(() => this.#schedule(), MAX_TIMER_MS);
    else this.#set(() => void this.renewNow(), wait);
  }

  #set(fn: () => void, ms: number): void {
    if (this.#stopped) return;
    this.#timer = this.options.clock.setTimeout(fn, ms);
    unrefTimer(this.#timer);
  }

  #clear(): void {
    this.options.clock.clearTimeout(this.#timer);
    this.#timer = undefined;
  }
}
