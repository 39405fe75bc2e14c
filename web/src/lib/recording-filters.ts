// The recordings page's view as it sits in the URL (filters and search), and how a moment in a
// recording is written (m:ss.s, as `postern recordings search` prints it). Pure: tested without a browser.

export interface RecordingFilters {
  readonly user: string;
  readonly socket: string;
  readonly since: string;
  readonly until: string;
  /** Free text searched in what was typed or shown; '' lists instead of searching. */
  readonly q: string;
}

const FIELDS = ['user', 'socket', 'since', 'until', 'q'] as const;

export function filtersFrom(search: URLSearchParams): RecordingFilters {
  const [user, socket, since, until, q] = FIELDS.map((field) => (search.get(field) ?? '').trim());
  return { user: user!, socket: socket!, since: since!, until: until!, q: q! };
}

/** The API's query fields: only those set; `q` only for the search route. */
export function apiFilters(filters: RecordingFilters): Record<string, string> {
  const out: Record<string, string> = {};
  for (const field of FIELDS) if (field !== 'q' && filters[field] !== '') out[field] = filters[field];
  return out;
}

/** Seconds into a recording as m:ss.s (h:mm:ss.s past an hour). */
export function formatOffset(seconds: number): string {
  const tenths = Math.max(0, Math.round(seconds * 10));
  const s = Math.floor(tenths / 10) % 60;
  const m = Math.floor(tenths / 600) % 60;
  const h = Math.floor(tenths / 36000);
  const rest = `${String(s).padStart(2, '0')}.${tenths % 10}`;
  return h > 0 ? `${h}:${String(m).padStart(2, '0')}:${rest}` : `${m}:${rest}`;
}
