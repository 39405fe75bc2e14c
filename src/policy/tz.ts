// Time zones without a date library: the UTC offset of an instant in an IANA zone (from
// Intl, cached), the wall-clock minute and weekday of an instant, and the way back from
// wall-clock time to instants. The caches are pure memoization: they never change a result.

export const MINUTE_MS = 60_000;
export const DAY_MS = 86_400_000;
/** Offsets are taken as constant within 15-minute UTC buckets: every zone changes offset on a quarter hour. */
const BUCKET_MS = 15 * MINUTE_MS;
/** Offset changes are months apart, so sampling every 6 h finds each of them. */
const SAMPLE_MS = 6 * 3_600_000;
const MAX_CACHED_BUCKETS = 4096;

export class Zone {
  readonly name: string;
  private readonly format: Intl.DateTimeFormat | undefined;
  private readonly offsets = new Map<number, number>();
  private lastBucket = Number.NaN;
  private lastOffset = 0;
  /** Wall clock of the last instant asked: one request's time rules all ask about the same instant. */
  private clockT = Number.NaN;
  private clockDay = 0;
  private clockMinute = 0;

  constructor(name: string) {
    this.name = name;
    this.format = name === 'UTC' ? undefined : new Intl.DateTimeFormat('en-US', {
      timeZone: name, hourCycle: 'h23', year: 'numeric', month: 'numeric', day: 'numeric', hour: 'numeric', minute: 'numeric', second: 'numeric',
    });
  }

  /** Local time minus UTC, in ms, at instant `t`. */
  offsetAt(t: number): number {
    if (!this.format) return 0;
    const bucket = Math.floor(t / BUCKET_MS);
    if (bucket === this.lastBucket) return this.lastOffset;
    let offset = this.offsets.get(bucket);
    if (offset === undefined) {
      if (this.offsets.size >= MAX_CACHED_BUCKETS) this.offsets.clear();
      offset = this.computeOffset(bucket * BUCKET_MS);
      this.offsets.set(bucket, offset);
    }
    this.lastBucket = bucket;
    this.lastOffset = offset;
    return offset;
  }

  /** Minutes since local midnight at `t`. */
  minuteAt(t: number): number {
    if (t !== this.clockT) this.readClock(t);
    return this.clockMinute;
  }

  /** 0 = Sunday … 6 = Saturday, local, at `t`. */
  weekdayAt(t: number): number {
    if (t !== this.clockT) this.readClock(t);
    // 1970-01-01 was a Thursday.
    return (((this.clockDay + 4) % 7) + 7) % 7;
  }

  private readClock(t: number): void {
    const local = t + this.offsetAt(t);
    this.clockDay = Math.floor(local / DAY_MS);
    // No `%` on these large doubles: V8 compiles that to a slow fmod call.
    this.clockMinute = Math.floor((local - this.clockDay * DAY_MS) / MINUTE_MS);
    this.clockT = t;
  }

  private computeOffset(t: number): number {
    const p: Record<string, number> = {};
    for (const part of this.format!.formatToParts(t)) if (part.type !== 'literal') p[part.type] = Number(part.value);
    return Date.UTC(p['year']!, p['month']! - 1, p['day']!, p['hour']!, p['minute']!, p['second']!) - Math.floor(t / 1000) * 1000;
  }
}

const zones = new Map<string, Zone>();

/** The zone of a canonical IANA name (see `canonicalTimeZone`); cached. */
export function zone(name: string): Zone {
  let z = zones.get(name);
  if (!z) {
    z = new Zone(name);
    zones.set(name, z);
  }
  return z;
}

/** The canonical spelling of an IANA zone (`europe/amsterdam` → `Europe/Amsterdam`), or undefined if unknown. */
export function canonicalTimeZone(name: string): string | undefined {
  if (name.trim() === '') return undefined;
  try {
    return new Intl.DateTimeFormat(undefined, { timeZone: name }).resolvedOptions().timeZone;
  } catch {
    return undefined;
  }
}

/** The first instant in (from, to] at which the offset differs from the one at `from`, if any. */
export function nextTransition(z: Zone, from: number, to: number): number | undefined {
  const base = z.offsetAt(from);
  let lo = from;
  for (let t = (Math.floor(from / SAMPLE_MS) + 1) * SAMPLE_MS; lo < to; t += SAMPLE_MS) {
    const hi = Math.min(t, to);
    if (z.offsetAt(hi) !== base) {
      // Binary search over buckets: the first bucket in (lo, hi] with the new offset.
      let a = Math.floor(lo / BUCKET_MS);
      let b = Math.floor(hi / BUCKET_MS);
      while (b - a > 1) {
        const mid = Math.floor((a + b) / 2);
        if (z.offsetAt(mid * BUCKET_MS) === base) a = mid;
        else b = mid;
      }
      return b * BUCKET_MS;
    }
    lo = hi;
  }
  return undefined;
}

/**
 * The instant of a wall-clock time, disambiguated as Temporal's "compatible" does: the earlier
 * one when the clock is set back (the time happens twice), and shifted forward by the gap when
 * the clock is set forward (the time never happens).
 */
export function instantOfLocal(z: Zone, local: number): number {
  const offsets = [z.offsetAt(local - DAY_MS), z.offsetAt(local + DAY_MS)];
  const valid = offsets.map((o) => local - o).filter((u) => z.offsetAt(u) === local - u);
  return valid.length > 0 ? Math.min(...valid) : local - Math.min(...offsets);
}
