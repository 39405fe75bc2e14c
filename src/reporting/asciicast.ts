// asciicast v2, the pure parts: the header line, event lines, cutting terminal bytes into
// bounded pieces, reading lines back, and the timing of a replay (speed, idle limit).
// Format: https://docs.asciinema.org/manual/asciicast/v2/ — one JSON header line, then one
// JSON array per event: [seconds since start, "o" | "i" | "r", data].

export type CastEventCode = 'o' | 'i' | 'r';

export interface CastHeader {
  readonly version: 2;
  readonly width: number;
  readonly height: number;
  /** Unix seconds of the start. */
  readonly timestamp: number;
  readonly title?: string;
  readonly env?: { readonly TERM?: string; readonly SHELL?: string };
}

export interface CastEvent {
  readonly time: number;
  readonly code: CastEventCode;
  readonly data: string;
}

/** What a header is made of (a recording row or the metadata the producer gave). */
export interface CastHeaderSource {
  readonly width: number;
  readonly height: number;
  readonly startedAt: Date | string;
  readonly title: string;
  readonly term: string;
}

/** The header line, newline included. */
export function castHeaderLine(source: CastHeaderSource): string {
  const started = typeof source.startedAt === 'string' ? Date.parse(source.startedAt) : source.startedAt.getTime();
  const header: CastHeader = {
    version: 2,
    width: source.width,
    height: source.height,
    timestamp: Math.floor(started / 1000),
    ...(source.title !== '' ? { title: source.title } : {}),
    ...(source.term !== '' ? { env: { TERM: source.term } } : {}),
  };
  return `${JSON.stringify(header)}\n`;
}

/** Seconds from start to `atMs`, at microsecond precision, never before `notBefore` (events keep their order). */
export function eventTime(startMs: number, atMs: number, notBefore = 0): number {
  const seconds = Math.round(Math.max(0, atMs - startMs) * 1000) / 1_000_000;
  return Math.max(seconds, notBefore);
}

/** One event line, newline included. */
export function castEventLine(time: number, code: CastEventCode, data: string): string {
  return `${JSON.stringify([time, code, data])}\n`;
}

/** `WxH`, the data of a resize event. */
export function resizeData(width: number, height: number): string {
  return `${width}x${height}`;
}

/** Cuts `data` into pieces of at most `max` bytes, so no one event (or chunk) grows without bound. */
export function slices(data: Buffer, max: number): Buffer[] {
  if (data.length <= max) return [data];
  const out: Buffer[] = [];
  for (let i = 0; i < data.length; i += max) out.push(data.subarray(i, i + max));
  return out;
}

/** An event line read back; undefined for anything else (the header, a blank or damaged line). */
export function parseEventLine(line: string): CastEvent | undefined {
  if (!line.startsWith('[')) return undefined;
  let value: unknown;
  try {
    value = JSON.parse(line);
  } catch {
    return undefined;
  }
  if (!Array.isArray(value) || value.length < 3) return undefined;
  const [time, code, data] = value as unknown[];
  if (typeof time !== 'number' || !Number.isFinite(time) || typeof data !== 'string') return undefined;
  if (code !== 'o' && code !== 'i' && code !== 'r') return undefined;
  return { time, code, data };
}

export interface ReplayTiming {
  /** 2 = twice as fast. */
  readonly speed: number;
  /** Pauses longer than this many seconds are shortened to it (before the speed applies). */
  readonly idleLimit?: number;
}

/** Milliseconds to wait before showing an event that came `gap` seconds after the previous one. */
export function replayDelayMs(gap: number, timing: ReplayTiming): number {
  const capped = timing.idleLimit === undefined ? gap : Math.min(gap, timing.idleLimit);
  return Math.max(0, (capped * 1000) / timing.speed);
}

/** Each event's time on the replay's own clock (seconds from the start of the replay). */
export function replaySchedule(times: readonly number[], timing: ReplayTiming): number[] {
  let previous = 0;
  let clock = 0;
  return times.map((time) => {
    clock += replayDelayMs(Math.max(0, time - previous), timing) / 1000;
    previous = Math.max(previous, time);
    return clock;
  });
}
