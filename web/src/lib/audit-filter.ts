// The audit page's filters: read from and written to the URL query (a link reproduces the view),
// checked (a time range must be two real times, from before to), and turned into the API's query;
// and the rows a filter shows as its pages and its live tail arrive.
import type { AuditEventView, AuditFilterQuery, AuditPage } from '../../../src/control/audit-types.js';

export interface AuditFilters {
  readonly user: string;
  readonly socket: string;
  readonly type: string;
  readonly decision: '' | 'allow' | 'deny';
  /** Local date-time as an `<input type="datetime-local">` holds it (YYYY-MM-DDTHH:MM), or ''. */
  readonly from: string;
  readonly to: string;
  readonly q: string;
}

export const EMPTY_FILTERS: AuditFilters = { user: '', socket: '', type: '', decision: '', from: '', to: '', q: '' };

const KEYS = ['user', 'socket', 'type', 'decision', 'from', 'to', 'q'] as const;

export function filtersFromSearch(search: URLSearchParams): AuditFilters {
  const get = (key: (typeof KEYS)[number]) => (search.get(key) ?? '').trim();
  const decision = get('decision');
  return { user: get('user'), socket: get('socket'), type: get('type'), decision: decision === 'allow' || decision === 'deny' ? decision : '', from: get('from'), to: get('to'), q: get('q') };
}

/** The page's own query string (set fields only, in a fixed order), '' when nothing is set. */
export function filtersToSearch(filters: AuditFilters): string {
  const search = new URLSearchParams();
  for (const key of KEYS) if (filters[key] !== '') search.set(key, filters[key]);
  const text = search.toString();
  return text === '' ? '' : `?${text}`;
}

/** A local `datetime-local` value as an instant, or undefined when it is not one. */
export function localTime(value: string): Date | undefined {
  if (!/^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2})?$/.test(value)) return undefined;
  const date = new Date(value);
  return Number.isNaN(date.getTime()) ? undefined : date;
}

/** What is wrong with the filters, for the person to fix (undefined when they can be sent). */
export function filterProblem(filters: AuditFilters): string | undefined {
  const from = filters.from === '' ? undefined : localTime(filters.from);
  const to = filters.to === '' ? undefined : localTime(filters.to);
  if (filters.from !== '' && from === undefined) return `"From" is not a date and time: ${filters.from}`;
  if (filters.to !== '' && to === undefined) return `"To" is not a date and time: ${filters.to}`;
  if (from !== undefined && to !== undefined && from.getTime() >= to.getTime()) return '"From" must be before "To"';
  return undefined;
}

/** The API's filter fields for valid filters (times as UTC ISO 8601; `to` exclusive). */
export function apiFilter(filters: AuditFilters): AuditFilterQuery {
  const from = localTime(filters.from);
  const to = localTime(filters.to);
  return {
    ...(filters.user !== '' ? { user: filters.user } : {}),
    ...(filters.socket !== '' ? { socket: filters.socket } : {}),
    ...(filters.type !== '' ? { type: filters.type } : {}),
    ...(filters.decision !== '' ? { decision: filters.decision } : {}),
    ...(from !== undefined ? { since: from.toISOString() } : {}),
    ...(to !== undefined ? { until: to.toISOString() } : {}),
    ...(filters.q !== '' ? { q: filters.q } : {}),
  };
}

/** The rows shown for one filter (`key`), newest first. */
export interface AuditRows {
  readonly key: string;
  readonly events: readonly AuditEventView[];
  /** Where "Load older" continues (the API's `before`), null when the oldest row is shown. */
  readonly nextBefore: number | null;
  /** The live tail starts after this id: the newest event when the first page was read. */
  readonly tailAfter: number;
}

export function firstPage(key: string, page: AuditPage): AuditRows {
  return { key, events: page.events, nextBefore: page.nextBefore ?? null, tailAfter: page.events[0]?.id ?? 0 };
}

/** An older page below the rows; anything not older than the last row (already shown) is left out. */
export function withOlderPage(rows: AuditRows, page: AuditPage): AuditRows {
  const last = rows.events.at(-1)?.id ?? Infinity;
  return { ...rows, events: [...rows.events, ...page.events.filter((e) => e.id < last)], nextBefore: page.nextBefore ?? null };
}

/**
 * A tailed event on top (once). Past `max` rows the oldest go, and "Load older" then continues
 * right below the last row kept, so nothing is skipped.
 */
export function withLiveEvent(rows: AuditRows, event: AuditEventView, max: number): AuditRows {
  if (rows.events.some((e) => e.id === event.id)) return rows;
  const events = [event, ...rows.events];
  if (events.length <= max) return { ...rows, events };
  const kept = events.slice(0, max);
  return { ...rows, events: kept, nextBefore: kept.at(-1)!.id };
}
