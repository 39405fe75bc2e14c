// The audit trail and HTTP log: filters kept in the URL, newest first with "Load older" paging
// through the server's keyset cursor, rows that expand to their details, a live tail over
// server-sent events, and export links for exactly what the filters select.
import { useEffect, useMemo, useRef, useState } from 'preact/hooks';
import type { AuditEventView, AuditPage as AuditPageView, AuditTypesView } from '../../../../src/control/audit-types.js';
import { ApiError, api, query } from '../../api.js';
import { useLocation } from '../../router.js';
import { Page, Problem, Progress, useResource } from '../../ui.js';
import { formatDuration, formatTimestamp } from '../../lib/format.js';
import { EMPTY_FILTERS, apiFilter, filterProblem, filtersFromSearch, filtersToSearch, firstPage, withLiveEvent, withOlderPage } from '../../lib/audit-filter.js';
import type { AuditFilters, AuditRows } from '../../lib/audit-filter.js';
import './audit.css';

const PAGE_SIZE = 50;
/** The live tail keeps at most this many rows on screen. */
const MAX_ROWS = 2000;

export function AuditPage() {
  const { search, navigate } = useLocation();
  const applied = useMemo(() => filtersFromSearch(search), [search.toString()]);
  const [draft, setDraft] = useState<AuditFilters>(applied);
  useEffect(() => setDraft(applied), [applied]);
  const problem = filterProblem(applied);
  const filter = problem === undefined ? apiFilter(applied) : undefined;
  const types = useResource<AuditTypesView>('/api/v1/audit/types');

  const filterKey = JSON.stringify(filter ?? null);
  const [rows, setRows] = useState<AuditRows | undefined>();
  const [loading, setLoading] = useState(false);
  const [error, setError] = useState<ApiError | undefined>();
  const [fresh, setFresh] = useState<ReadonlySet<number>>(new Set());
  const [tail, setTail] = useState(false);
  /** Aborted when the filter changes, so no answer for an old filter lands in the new one's rows. */
  const reads = useRef(new AbortController());

  const read = async (before: number | null) => {
    if (filter === undefined) return;
    const { signal } = reads.current;
    setLoading(true);
    try {
      const page = await api<AuditPageView>('GET', `/api/v1/audit${query({ ...filter, limit: PAGE_SIZE, ...(before === null ? { order: 'desc' } : { before }) })}`, undefined, signal);
      setRows((old) => (before === null || old === undefined ? firstPage(filterKey, page) : withOlderPage(old, page)));
      setError(undefined);
    } catch (err) {
      if (!signal.aborted) setError(err instanceof ApiError ? err : new ApiError(0, 'network', String(err)));
    } finally {
      if (!signal.aborted) setLoading(false);
    }
  };

  useEffect(() => {
    reads.current = new AbortController();
    setRows(undefined);
    setError(undefined);
    void read(null);
    return () => reads.current.abort();
  }, [filterKey]);

  const shown = rows?.key === filterKey ? rows : undefined;
  const tailAfter = shown?.tailAfter;
  useEffect(() => {
    if (!tail || filter === undefined || tailAfter === undefined) return;
    // From the newest event of the first page on; the browser resumes with Last-Event-ID if the stream drops.
    const source = new EventSource(`/api/v1/audit/events${query({ ...filter, after: tailAfter })}`);
    source.onmessage = (message: MessageEvent<string>) => {
      const event = JSON.parse(message.data) as AuditEventView;
      setRows((old) => (old === undefined ? old : withLiveEvent(old, event, MAX_ROWS)));
      setFresh((old) => new Set(old).add(event.id));
    };
    return () => source.close();
  }, [tail, filterKey, tailAfter]);

  const apply = (e: Event) => {
    e.preventDefault();
    navigate(`/audit${filtersToSearch(draft)}`);
  };
  const field = (key: keyof AuditFilters) => ({
    value: draft[key],
    onInput: (e: Event) => setDraft({ ...draft, [key]: (e.currentTarget as HTMLInputElement).value }),
  });
  const exportHref = (format: 'jsonl' | 'csv') => `/api/v1/audit/export${query({ ...(filter ?? {}), format })}`;

  return (
    <Page title="Audit" actions={filter === undefined ? null : <>
      <a class="button" href={exportHref('jsonl')} download>Export JSONL</a>
      <a class="button" href={exportHref('csv')} download>Export CSV</a>
    </>}>
      <form class="filters" onSubmit={apply} aria-label="Audit filters">
        <label>User<input type="search" placeholder="email" {...field('user')} /></label>
        <label>Socket<input type="search" {...field('socket')} /></label>
        <label>Type<select {...field('type')} onChange={field('type').onInput}>
          <option value="">any</option>
          {(types.data?.types ?? []).map((t) => <option value={t}>{t}</option>)}
        </select></label>
        <label>Decision<select {...field('decision')} onChange={field('decision').onInput}>
          <option value="">any</option><option value="allow">allow</option><option value="deny">deny</option>
        </select></label>
        <label>From<input type="datetime-local" {...field('from')} /></label>
        <label>To<input type="datetime-local" {...field('to')} /></label>
        <label>Search<input type="search" placeholder="reason, user, path…" {...field('q')} /></label>
        <button type="submit">Apply</button>
        <button type="button" onClick={() => { setDraft(EMPTY_FILTERS); navigate('/audit'); }} disabled={filtersToSearch(applied) === '' && filtersToSearch(draft) === ''}>Clear</button>
        <label class="audit-tail"><input type="checkbox" checked={tail} onChange={(e) => setTail(e.currentTarget.checked)} />Live tail</label>
      </form>
      {problem !== undefined ? <p class="problem" role="alert">{problem}</p> : null}
      <Problem error={error ?? types.error} />
      <AuditTable events={shown?.events ?? []} fresh={fresh} />
      <Progress active={loading} label="Loading events…" />
      {shown !== undefined && shown.events.length === 0 ? <p class="muted">No events match.</p> : null}
      <div class="pager">
        {shown !== undefined && shown.nextBefore !== null ? <button type="button" disabled={loading} onClick={() => void read(shown.nextBefore)}>Load older</button> : null}
      </div>
    </Page>
  );
}

function AuditTable({ events, fresh }: { events: readonly AuditEventView[]; fresh: ReadonlySet<number> }) {
  const [open, setOpen] = useState<ReadonlySet<number>>(new Set());
  const toggle = (id: number) => setOpen((old) => {
    const next = new Set(old);
    if (!next.delete(id)) next.add(id);
    return next;
  });
  if (events.length === 0) return null;
  return (
    <table class="table audit-table">
      <thead><tr><th>Time</th><th>Type</th><th>User</th><th>Socket</th><th>Decision</th><th>What</th><th><span class="muted">Details</span></th></tr></thead>
      <tbody>
        {events.flatMap((event) => [
          <tr key={event.id} class={fresh.has(event.id) ? 'audit-new' : undefined}>
            <td class="audit-when">{formatTimestamp(event.at)}</td>
            <td>{event.type}</td>
            <td>{event.actor}</td>
            <td>{event.socket}</td>
            <td>{event.decision === '' ? null : <span class={`badge ${event.decision}`}>{event.decision}</span>}</td>
            <td><What event={event} /></td>
            <td><button type="button" aria-expanded={open.has(event.id)} aria-label={`Details of event ${event.id}`} onClick={() => toggle(event.id)}>{open.has(event.id) ? 'Hide' : 'Show'}</button></td>
          </tr>,
          open.has(event.id) ? <tr key={`${event.id}-details`} class="audit-details"><td colSpan={7}><pre>{JSON.stringify(event, null, 2)}</pre></td></tr> : null,
        ])}
      </tbody>
    </table>
  );
}

function What({ event }: { event: AuditEventView }) {
  if (event.type === 'http.request') return <HttpLine event={event} />;
  // A kill's actor is the killer; whose connection it was is in its details.
  const victim = event.type === 'connection.killed' ? event.details.user : undefined;
  return <>{event.reason}{typeof victim === 'string' ? <span class="muted"> · connection of {victim}</span> : null}</>;
}

/** An HTTP request log line: method, path, status, duration (and the reason when denied). */
function HttpLine({ event }: { event: AuditEventView }) {
  const { method, path, status, durationMs } = event.details as { method?: unknown; path?: unknown; status?: unknown; durationMs?: unknown };
  return (
    <span class="audit-http">
      {String(method ?? '')} {String(path ?? '')} → {String(status ?? '–')}
      {typeof durationMs === 'number' ? ` · ${requestDuration(durationMs)}` : ''}
      {event.decision === 'deny' && event.reason !== '' ? <span class="muted"> · {event.reason}</span> : null}
    </span>
  );
}

/** Most requests take milliseconds, which formatDuration's whole seconds would show as "0 s". */
function requestDuration(ms: number): string {
  return ms < 1000 ? `${Math.round(ms)} ms` : formatDuration(ms);
}
