// The small languages inside policy documents (names, time ranges, durations, dates, weekdays,
// emails), parsed in one place so that validation and compilation cannot disagree.
import type { Weekday } from './types.js';
import { DAY_MS, MINUTE_MS, instantOfLocal, zone } from './tz.js';

/** Policy and rule names: lower-case slugs. */
export const SLUG = /^[a-z0-9][a-z0-9._-]{0,62}$/;
/** Socket names are DNS labels. */
export const SOCKET_NAME = /^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/;
const EMAIL = /^[^\s@]+@[^\s@]+$/;
const DOMAIN = /^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?(\.[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)*$/;
const TIME_RANGE = /^(\d{2}):(\d{2})-(\d{2}):(\d{2})$/;
const DURATION = /^([1-9]\d{0,5})(s|m|h|d)$/;
const INSTANT = /^(\d{4})-(\d{2})-(\d{2})(?:T(\d{2}):(\d{2})(?::(\d{2})(?:\.(\d{1,3}))?)?(Z|[+-]\d{2}:\d{2})?)?$/;

/** Index = JavaScript's getUTCDay(): sun = 0. */
export const WEEKDAYS: readonly Weekday[] = ['sun', 'mon', 'tue', 'wed', 'thu', 'fri', 'sat'];

export function isNamespace(text: string): boolean {
  return text === '' || text.split('/').every((segment) => SLUG.test(segment));
}

export function isEmail(text: string): boolean {
  return EMAIL.test(text);
}

export function isDomain(text: string): boolean {
  return text.length <= 253 && DOMAIN.test(text);
}

/** Minutes since local midnight; `end` may be 1440 (24:00). `end < start` wraps past midnight. */
export interface TimeRange {
  readonly start: number;
  readonly end: number;
}

/** `HH:MM-HH:MM`; undefined when malformed or empty (start = end). */
export function parseTimeRange(text: string): TimeRange | undefined {
  const m = TIME_RANGE.exec(text);
  if (!m) return undefined;
  const [sh, sm, eh, em] = [m[1], m[2], m[3], m[4]].map(Number) as [number, number, number, number];
  if (sh > 23 || sm > 59 || em > 59 || eh > 24 || (eh === 24 && em !== 0)) return undefined;
  const start = sh * 60 + sm;
  const end = eh * 60 + em;
  return start === end ? undefined : { start, end };
}

const UNIT_MS: Record<string, number> = { s: 1000, m: MINUTE_MS, h: 3_600_000, d: DAY_MS };

/** `90s`, `30m`, `2h`, `1d` in ms; undefined when malformed. */
export function parseDuration(text: string): number | undefined {
  const m = DURATION.exec(text);
  return m ? Number(m[1]) * UNIT_MS[m[2]!]! : undefined;
}

/**
 * An `after`/`before` value as an instant: `2025-06-01`, `2025-06-01T08:00`, or with `Z` / an
 * offset. Without an offset the date is wall-clock time in the rule's `tz` (what a person means
 * by "after June 1st" in Amsterdam). Undefined when malformed.
 */
export function parseInstant(text: string, tz: string): number | undefined {
  const m = INSTANT.exec(text);
  if (!m) return undefined;
  const [y, mo, d, h = 0, mi = 0, s = 0] = [m[1], m[2], m[3], m[4], m[5], m[6]].map((v) => (v === undefined ? undefined : Number(v)));
  const ms = m[7] === undefined ? 0 : Number(m[7].padEnd(3, '0'));
  const local = Date.UTC(y!, mo! - 1, d!, h, mi, s, ms);
  const back = new Date(local);
  // Date.UTC rolls 2025-02-30 over into March: a round trip catches impossible dates.
  if (y! < 1970 || back.getUTCMonth() !== mo! - 1 || back.getUTCDate() !== d || h > 23 || mi > 59 || s > 59) return undefined;
  const offset = m[8];
  if (offset === undefined) return instantOfLocal(zone(tz), local);
  if (offset === 'Z') return local;
  const sign = offset[0] === '-' ? -1 : 1;
  const minutes = Number(offset.slice(1, 3)) * 60 + Number(offset.slice(4, 6));
  return local - sign * minutes * MINUTE_MS;
}
