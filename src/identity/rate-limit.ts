// Login throttling: a sliding-window counter per key (in memory, bounded: past `maxKeys` the key
// idle longest is forgotten first), and the sign-in throttle built on it, which counts each
// password attempt *before* the password is checked (scrypt is slow and async: parallel guesses
// must not all get through first) per account from one client, per client, and per account.
import { PosternError } from '../errors.js';

export interface LoginRateLimiterOptions {
  /** Failures allowed in one window before further attempts are refused (default 5). */
  readonly maxFailures?: number;
  /** Length of the sliding window in ms (default 15 minutes). */
  readonly windowMs?: number;
  /** Keys kept at most (default 10,000). */
  readonly maxKeys?: number;
}

export interface RateLimitResult {
  readonly allowed: boolean;
  /** 0 when allowed; otherwise how long until the oldest failure leaves the window. */
  readonly retryAfterMs: number;
}

const ALLOWED: RateLimitResult = Object.freeze({ allowed: true, retryAfterMs: 0 });

function positiveInt(name: string, value: number): number {
  if (!Number.isSafeInteger(value) || value < 1) {
    throw new PosternError('config_invalid', `rate limit ${name} must be a positive integer (got ${value})`);
  }
  return value;
}

export class LoginRateLimiter {
  readonly #maxFailures: number;
  readonly #windowMs: number;
  readonly #maxKeys: number;
  /** key → failure times (ms, ascending, at most maxFailures). Map order = least recently failed first. */
  readonly #failures = new Map<string, number[]>();

  constructor(options: LoginRateLimiterOptions = {}) {
    this.#maxFailures = positiveInt('maxFailures', options.maxFailures ?? 5);
    this.#windowMs = positiveInt('windowMs', options.windowMs ?? 15 * 60_000);
    this.#maxKeys = positiveInt('maxKeys', options.maxKeys ?? 10_000);
  }

  /** Keys currently tracked. */
  get size(): number {
    return this.#failures.size;
  }

  /** Whether an attempt under `key` may go ahead at `now`. Call before checking the password. */
  check(key: string, now: Date): RateLimitResult {
    const times = this.#live(key, now.getTime());
    if (times === undefined || times.length < this.#maxFailures) return ALLOWED;
    return { allowed: false, retryAfterMs: Math.max(1, times[0]! + this.#windowMs - now.getTime()) };
  }

  /** Counts one attempt under `key` (a failure, or one not known yet to succeed); returns whether the next is allowed. */
  recordFailure(key: string, now: Date): RateLimitResult {
    const at = now.getTime();
    const times = this.#live(key, at) ?? [];
    times.push(at);
    if (times.length > this.#maxFailures) times.shift();
    this.#failures.delete(key);
    this.#failures.set(key, times);
    this.#evict(at);
    return this.check(key, now);
  }

  /** Forgets `key`: call after a successful sign-in. */
  reset(key: string): void {
    this.#failures.delete(key);
  }

  /** Takes back the one attempt counted under `key` at `at` (it turned out to succeed). */
  withdraw(key: string, at: Date): void {
    const times = this.#failures.get(key);
    const index = times?.lastIndexOf(at.getTime()) ?? -1;
    if (index < 0) return;
    times!.splice(index, 1);
    if (times!.length === 0) this.#failures.delete(key);
  }

  /** The failures of `key` still inside the window, or undefined (and forgotten) when none. */
  #live(key: string, at: number): number[] | undefined {
    const times = this.#failures.get(key);
    if (times === undefined) return undefined;
    while (times.length > 0 && times[0]! <= at - this.#windowMs) times.shift();
    if (times.length > 0) return times;
    this.#failures.delete(key);
    return undefined;
  }

  /** Drops expired keys from the idle end, then the idlest ones while over the cap. */
  #evict(at: number): void {
    for (const [key, times] of this.#failures) {
      const expired = times[times.length - 1]! <= at - this.#windowMs;
      if (!expired && this.#failures.size <= this.#maxKeys) return;
      this.#failures.delete(key);
    }
  }
}

export interface SignInThrottleOptions {
  /** Attempts on one account from one client network per window (default 5). */
  readonly perAccountAndClient?: number;
  /** Attempts from one client network on any accounts per window (default 20): password spraying. */
  readonly perClient?: number;
  /**
   * Attempts on one account from anywhere per window (default 100): a guesser with many
   * addresses. High, so that no single client can lock a person out.
   */
  readonly perAccount?: number;
  readonly windowMs?: number;
  readonly maxKeys?: number;
}

/** One counted password attempt, to settle with `succeeded` when the password was right. */
export interface SignInAttempt {
  readonly account: string;
  readonly client: string;
  readonly at: Date;
}

export type SignInGate = { readonly allowed: true; readonly attempt: SignInAttempt } | { readonly allowed: false; readonly retryAfterMs: number };

export class SignInThrottle {
  readonly #pair: LoginRateLimiter;
  readonly #client: LoginRateLimiter;
  readonly #account: LoginRateLimiter;

  constructor(options: SignInThrottleOptions = {}) {
    const shared = { ...(options.windowMs === undefined ? {} : { windowMs: options.windowMs }), ...(options.maxKeys === undefined ? {} : { maxKeys: options.maxKeys }) };
    this.#pair = new LoginRateLimiter({ ...shared, maxFailures: options.perAccountAndClient ?? 5 });
    this.#client = new LoginRateLimiter({ ...shared, maxFailures: options.perClient ?? 20 });
    this.#account = new LoginRateLimiter({ ...shared, maxFailures: options.perAccount ?? 100 });
  }

  /**
   * Counts an attempt under all three keys before the password is checked, or refuses it (and
   * counts nothing) when any of them is full. Synchronous, so concurrent requests cannot all
   * pass the check before the first one is counted. `client` is the client's network, as
   * reporting's `clientNetwork` spells it (one IPv6 client usually holds a whole /64).
   */
  begin(account: string, client: string, now: Date): SignInGate {
    const keys = this.#keys(account, client);
    const refusals = keys.map(([limiter, key]) => limiter.check(key, now)).filter((r) => !r.allowed);
    if (refusals.length > 0) return { allowed: false, retryAfterMs: Math.max(...refusals.map((r) => r.retryAfterMs)) };
    for (const [limiter, key] of keys) limiter.recordFailure(key, now);
    return { allowed: true, attempt: { account, client, at: now } };
  }

  /** The password was right: this client's failures on the account are forgiven; elsewhere the attempt stops counting. */
  succeeded(attempt: SignInAttempt): void {
    const [pair, client, account] = this.#keys(attempt.account, attempt.client);
    pair[0].reset(pair[1]);
    client[0].withdraw(client[1], attempt.at);
    account[0].withdraw(account[1], attempt.at);
  }

  #keys(account: string, client: string): [[LoginRateLimiter, string], [LoginRateLimiter, string], [LoginRateLimiter, string]] {
    return [
      [this.#pair, loginRateLimitKey(account, client)],
      [this.#client, client],
      [this.#account, account.trim().toLowerCase()],
    ];
  }
}

/** The refusal to answer with when `check` says no. */
export function rateLimitedError(result: RateLimitResult): PosternError {
  const seconds = Math.ceil(result.retryAfterMs / 1000);
  return new PosternError('rate_limited', `too many failed sign-ins: try again in ${seconds} s`, { retryable: true });
}

/** The limiter key for one account from one client network: the account lower-cased beside it. */
export function loginRateLimitKey(account: string, client: string): string {
  return JSON.stringify([account.trim().toLowerCase(), client]);
}
