// `when`: after/before instants, weekdays and a time-of-day window, in the rule's time zone.
// A window whose end is before its start wraps past midnight, and its after-midnight part
// belongs to the weekday on which it started (`fri 22:00-06:00` covers Saturday 03:00, not
// Friday 03:00). `nextChange` finds the next instant the condition starts or stops matching,
// exactly, across offset changes, so a long-lived connection knows when to be decided again.
import type { Facts } from '../facts.js';
import { WEEKDAYS, parseInstant, parseTimeRange } from '../syntax.js';
import type { TimeRange } from '../syntax.js';
import type { RuleOutcome, WhenCondition } from '../types.js';
import { DAY_MS, MINUTE_MS, canonicalTimeZone, nextTransition, zone } from '../tz.js';
import type { Zone } from '../tz.js';
import { listText } from './condition.js';
import type { Condition, Criterion } from './condition.js';

/** A weekly pattern changes within 7 days if it ever does; 9 leaves room for an offset change. */
const HORIZON_MS = 9 * DAY_MS;

type Daily = 'matched' | 'when-weekday' | 'when-time';

function hhmm(minutes: number): string {
  return `${String(Math.floor(minutes / 60)).padStart(2, '0')}:${String(minutes % 60).padStart(2, '0')}`;
}

/** The weekday that counts at a wall-clock minute: a wrapped window's after-midnight part belongs to the day before. */
function windowDay(minute: number, day: number, range: TimeRange | undefined): number {
  return range && range.end < range.start && minute < range.end ? (day + 6) % 7 : day;
}

function dailyOutcome(tz: Zone, t: number, days: number | undefined, range: TimeRange | undefined): Daily {
  const minute = tz.minuteAt(t);
  const day = windowDay(minute, tz.weekdayAt(t), range);
  if (days !== undefined && (days & (1 << day)) === 0) return 'when-weekday';
  if (!range) return 'matched';
  const inWindow = range.end < range.start ? minute >= range.start || minute < range.end : minute >= range.start && minute < range.end;
  return inWindow ? 'matched' : 'when-time';
}

function compileParts(block: WhenCondition) {
  const tzName = canonicalTimeZone(block.tz ?? 'UTC');
  if (!tzName) throw new Error(`when.tz: "${block.tz}" is not an IANA time zone`);
  const instant = (field: 'after' | 'before') => {
    const text = block[field];
    if (text === undefined) return undefined;
    const t = parseInstant(text, tzName);
    if (t === undefined) throw new Error(`when.${field}: expected an ISO 8601 date or date-time, got "${text}"`);
    return t;
  };
  const range = block.time === undefined ? undefined : parseTimeRange(block.time);
  if (block.time !== undefined && !range) throw new Error(`when.time: expected HH:MM-HH:MM, got "${block.time}"`);
  const days = block.weekdays?.reduce((mask, d, i) => {
    if (!WEEKDAYS.includes(d)) throw new Error(`when.weekdays[${i}]: "${d}" is not a weekday (mon … sun)`);
    return mask | (1 << WEEKDAYS.indexOf(d));
  }, 0);
  return { tz: zone(tzName), after: instant('after'), before: instant('before'), days, range };
}

export function compileWhen(block: WhenCondition): Condition | undefined {
  const { tz, after, before, days, range } = compileParts(block);
  const daily = days !== undefined || range !== undefined;
  if (after === undefined && before === undefined && !daily) return undefined;

  const dailyAt = (t: number): Daily => (daily ? dailyOutcome(tz, t, days, range) : 'matched');
  const outcomeAt = (t: number): RuleOutcome => {
    if (after !== undefined && t < after) return 'when-after';
    if (before !== undefined && t >= before) return 'when-before';
    return dailyAt(t);
  };
  const matchesAt = (t: number) => outcomeAt(t) === 'matched';
  const marks = range ? [range.start, range.end].sort((a, b) => a - b) : [0];

  /** Scans segments of constant offset: within one, the daily part changes only at its marks. */
  const nextDailyChange = (from: number, current: boolean): number | undefined => {
    const horizon = from + HORIZON_MS;
    for (let segStart = from; segStart < horizon;) {
      const segEnd = nextTransition(tz, segStart, horizon) ?? horizon;
      const offset = tz.offsetAt(segStart);
      for (let day = Math.floor((segStart + offset) / DAY_MS); day * DAY_MS - offset < segEnd; day++) {
        for (const mark of marks) {
          const t = day * DAY_MS + mark * MINUTE_MS - offset;
          if (t > segStart && t < segEnd && (dailyAt(t) === 'matched') !== current) return t;
        }
      }
      if (segEnd < horizon && (dailyAt(segEnd) === 'matched') !== current) return segEnd;
      segStart = segEnd;
    }
    return undefined;
  };

  const computeNext = (at: number): number | undefined => {
    if (before !== undefined && at >= before) return undefined;
    let from = at;
    if (after !== undefined && at < after) {
      if (matchesAt(after)) return after;
      from = after;
    }
    const current = matchesAt(from);
    const t = daily ? nextDailyChange(from, current) : undefined;
    if (before !== undefined && (t === undefined || t >= before)) return current ? before : undefined;
    return t;
  };

  // Memo of the last answer: in [memoFrom, memoUntil) the condition does not change, so any
  // `at` in there has the same next change. Requests come in clock order, so this nearly always hits.
  let memoFrom = Number.NaN;
  let memoUntil = Number.NaN;
  const nextChange = (at: number): number | undefined => {
    if (!(at >= memoFrom && at < memoUntil)) {
      memoFrom = at;
      memoUntil = computeNext(at) ?? Number.POSITIVE_INFINITY;
    }
    return memoUntil === Number.POSITIVE_INFINITY ? undefined : memoUntil;
  };

  const detail = (f: Facts, outcome: RuleOutcome): string => {
    const minute = tz.minuteAt(f.at);
    const day = WEEKDAYS[windowDay(minute, tz.weekdayAt(f.at), range)];
    const wrapped = day !== WEEKDAYS[tz.weekdayAt(f.at)] ? ' (the window opened the day before)' : '';
    switch (outcome) {
      case 'when-after': return `not yet: the rule applies from ${new Date(after!).toISOString()}`;
      case 'when-before': return `expired: the rule applied until ${new Date(before!).toISOString()}`;
      case 'when-weekday': return `weekday ${day}${wrapped} is not one of ${listText(block.weekdays!)} (${tz.name})`;
      case 'when-time': return `local time ${hhmm(minute)} is outside ${block.time} (${tz.name})`;
      default: return daily ? `${day} ${hhmm(minute)} ${tz.name} is within the rule's times` : 'within the rule\'s dates';
    }
  };

  return { test: (f) => outcomeAt(f.at), detail, nextChange };
}

export const whenCriterion: Criterion = {
  name: 'when',
  compile: (rule) => (rule.when ? compileWhen(rule.when) : undefined),
};
