// `/recordings`: recorded SSH sessions newest first, filtered by user, socket and time (kept in
// the URL), paged with "Load older"; a search through what was typed or shown, with the moment
// it first appears; sessions still running carry a LIVE badge and open to watch.
import './recordings.css';
import { useEffect, useState } from 'preact/hooks';
import type { RecordingList, RecordingSearch, RecordingView } from '../../../../src/control/recording-types.js';
import { api, ApiError, query } from '../../api.js';
import { apiFilters, filtersFrom, formatOffset } from '../../lib/recording-filters.js';
import type { RecordingFilters } from '../../lib/recording-filters.js';
import { formatBytes, formatDuration, formatTimestamp } from '../../lib/format.js';
import { Link, useLocation } from '../../router.js';
import { Page, Problem, Progress, useAction, useResource } from '../../ui.js';

const PAGE_SIZE = 50;

export function RecordingsPage() {
  const { search, navigate } = useLocation();
  const filters = filtersFrom(search);
  const show = (next: RecordingFilters) => navigate(`/recordings${query({ ...next })}`, { replace: true });
  return (
    <Page title="Recordings">
      <FilterForm filters={filters} onChange={show} />
      {filters.q ? <SearchResults filters={filters} /> : <RecordingTable filters={filters} />}
    </Page>
  );
}

function FilterForm({ filters, onChange }: { filters: RecordingFilters; onChange: (f: RecordingFilters) => void }) {
  const submit = (event: Event) => {
    event.preventDefault();
    const form = new FormData(event.currentTarget as HTMLFormElement);
    const text = (name: string) => String(form.get(name) ?? '').trim();
    onChange({ user: text('user'), socket: text('socket'), since: text('since'), until: text('until'), q: text('q') });
  };
  // Keyed by the URL's values, so back/forward refill the fields.
  return (
    <form class="filters" role="search" onSubmit={submit} key={JSON.stringify(filters)}>
      <label>Search what was typed or shown<input name="q" type="search" value={filters.q} placeholder="rm -rf" /></label>
      <label>User<input name="user" value={filters.user} placeholder="ana@corp.example" /></label>
      <label>Socket<input name="socket" value={filters.socket} /></label>
      <label>Since<input name="since" value={filters.since} placeholder="2026-12-01" /></label>
      <label>Until<input name="until" value={filters.until} /></label>
      <button type="submit" class="primary">Show</button>
    </form>
  );
}

function Live({ recording }: { recording: RecordingView }) {
  return recording.endedAt === null ? <span class="badge live" title="in progress: open it to watch">LIVE</span> : null;
}

function lengthOf(recording: RecordingView): string {
  return recording.endedAt === null ? 'running' : formatDuration(Date.parse(recording.endedAt) - Date.parse(recording.startedAt));
}

function RecordingTable({ filters }: { filters: RecordingFilters }) {
  const path = `/api/v1/recordings${query({ ...apiFilters(filters), limit: PAGE_SIZE })}`;
  const first = useResource<RecordingList>(path);
  const [older, setOlder] = useState<{ recordings: RecordingView[]; next?: string | undefined }>({ recordings: [] });
  useEffect(() => setOlder({ recordings: [] }), [path]);
  const more = useAction(async (before: string) => {
    const page = await api<RecordingList>('GET', `/api/v1/recordings${query({ ...apiFilters(filters), limit: PAGE_SIZE, before })}`);
    setOlder((o) => ({ recordings: [...o.recordings, ...page.recordings], next: page.next }));
  });
  const rows = [...(first.data?.recordings ?? []), ...older.recordings];
  const next = older.recordings.length > 0 ? older.next : first.data?.next;
  return (
    <>
      <Progress active={first.loading} label="Loading recordings…" />
      <Problem error={first.error ?? more.error} />
      <table>
        <thead><tr><th>Started</th><th>User</th><th>Socket</th><th>Login</th><th>What</th><th class="num">Length</th><th class="num">Size</th></tr></thead>
        <tbody>
          {rows.map((r) => (
            <tr key={r.id}>
              <td><Link href={`/recordings/${encodeURIComponent(r.id)}`}>{formatTimestamp(r.startedAt)}</Link> <Live recording={r} /></td>
              <td>{r.email}</td>
              <td>{r.socket}</td>
              <td>{r.login}</td>
              <td class="mono">{r.kind === 'shell' ? 'shell' : r.kind === 'database' ? `database ${r.command}` : r.command}</td>
              <td class="num">{lengthOf(r)}</td>
              <td class="num">{formatBytes(r.bytes)}</td>
            </tr>
          ))}
          {first.data && rows.length === 0 ? <tr><td colSpan={7} class="muted">No recordings match.</td></tr> : null}
        </tbody>
      </table>
      {next ? <div class="pager"><button type="button" disabled={more.pending} onClick={() => void more.run(next)}>Load older</button><Progress active={more.pending} /></div> : null}
    </>
  );
}

function SearchResults({ filters }: { filters: RecordingFilters }) {
  const result = useResource<RecordingSearch>(`/api/v1/recordings/search${query({ ...apiFilters(filters), q: filters.q })}`);
  const error: ApiError | undefined = result.error;
  return (
    <>
      <Progress active={result.loading} label="Searching recordings…" />
      <Problem error={error} />
      {result.data ? <p class="muted">{result.data.matches.length} match{result.data.matches.length === 1 ? '' : 'es'} in the {result.data.scanned} newest recordings that pass the filters.</p> : null}
      <table>
        <thead><tr><th>Started</th><th>User</th><th>Socket</th><th>First seen at</th><th>In</th><th>Where it appears</th></tr></thead>
        <tbody>
          {(result.data?.matches ?? []).map((m) => (
            <tr key={m.recording.id}>
              <td><Link href={`/recordings/${encodeURIComponent(m.recording.id)}?t=${m.time.toFixed(1)}`}>{formatTimestamp(m.recording.startedAt)}</Link> <Live recording={m.recording} /></td>
              <td>{m.recording.email}</td>
              <td>{m.recording.socket}</td>
              <td class="num">{formatOffset(m.time)}</td>
              <td>{m.stream === 'input' ? 'typed' : 'shown'}</td>
              <td class="mono excerpt">{m.excerpt}</td>
            </tr>
          ))}
        </tbody>
      </table>
    </>
  );
}
