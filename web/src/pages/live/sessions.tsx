// Live sessions: every sign-in with its live connections on every edge, kept current by the
// server's event stream (EventSource reconnects by itself), with a Kill per connection, per
// sign-in and per user, each confirmed first; a killed row goes when the edge's close arrives.
import { useEffect, useMemo, useState } from 'preact/hooks';
import type { KillResult, LiveConnectionView, LiveEvent } from '../../../../src/control/live-types.js';
import { api, ApiError, query } from '../../api.js';
import { useLocation } from '../../router.js';
import { Page, Problem, Progress, useAction } from '../../ui.js';
import { formatBytes, formatRelative, formatTimestamp } from '../../lib/format.js';
import { applyLiveEvent, emptyLive, groupLive, markKilling, parseLiveEvent } from '../../lib/live.js';
import type { LiveState, SessionGroup, UserGroup } from '../../lib/live.js';
import './live.css';

const EVENTS_PATH = '/api/v1/connections/events';
const EVENT_TYPES: readonly LiveEvent['type'][] = ['snapshot', 'opened', 'updated', 'closed', 'killed'];
/** After the server refused the stream (EventSource then gives up), try again this much later. */
const RETRY_CLOSED_MS = 5_000;

type StreamStatus = 'connecting' | 'live' | 'reconnecting';

/** The live connections as the stream tells them, and whether the stream is up. */
function useLiveConnections(): { state: LiveState; status: StreamStatus; setState: (f: (s: LiveState) => LiveState) => void; error: ApiError | undefined } {
  const [state, setState] = useState<LiveState>(emptyLive);
  const [status, setStatus] = useState<StreamStatus>('connecting');
  const [error, setError] = useState<ApiError>();
  useEffect(() => {
    let source: EventSource | undefined;
    let retry: ReturnType<typeof setTimeout> | undefined;
    const open = () => {
      source = new EventSource(EVENTS_PATH);
      const onEvent = (message: MessageEvent<string>) => {
        const event = parseLiveEvent(message.data);
        if (!event) return;
        if (event.type === 'snapshot') {
          setStatus('live');
          setError(undefined);
        }
        setState((s) => applyLiveEvent(s, event));
      };
      for (const type of EVENT_TYPES) source.addEventListener(type, onEvent as EventListener);
      source.onerror = () => {
        setStatus('reconnecting');
        if (source?.readyState !== EventSource.CLOSED) return;
        // Refused (signed out, no longer an admin): say why, then try again later.
        api('GET', '/api/v1/overview').catch((err: unknown) => setError(err instanceof ApiError ? err : undefined));
        retry = setTimeout(open, RETRY_CLOSED_MS);
      };
    };
    open();
    return () => {
      clearTimeout(retry);
      source?.close();
    };
  }, []);
  return { state, status, setState, error };
}

export function SessionsPage() {
  const { state, status, setState, error } = useLiveConnections();
  const { search, path, navigate } = useLocation();
  const filter = search.get('q') ?? '';
  const [notice, setNotice] = useState('');
  const shown = useMemo(() => {
    const q = filter.trim().toLowerCase();
    return q ? state.connections.filter((c) => c.email.includes(q) || c.socket.includes(q) || c.clientIp.includes(q)) : state.connections;
  }, [state.connections, filter]);
  const groups = useMemo(() => groupLive(shown), [shown]);
  const killed = (ids: readonly string[], result: string) => {
    setState((s) => markKilling(s, ids));
    setNotice(result);
  };
  return (
    <Page title="Live sessions" actions={<span class={`badge ${status === 'live' ? 'ok' : 'bad'}`} role="status" aria-label="Stream">{status === 'live' ? 'live' : status}</span>}>
      <form class="filters" onSubmit={(e) => e.preventDefault()}>
        <label>Filter by user, socket or IP
          <input type="search" value={filter} onInput={(e) => navigate(`${path}${query({ q: (e.target as HTMLInputElement).value })}`, { replace: true })} />
        </label>
      </form>
      <Problem error={error} />
      <Progress active={status === 'connecting'} label="Connecting to the live stream…" />
      {notice ? <p class="notice" role="status">{notice}</p> : null}
      {status !== 'connecting' && groups.length === 0 ? <p class="muted">{filter ? 'No live connection matches the filter.' : 'No live connections right now.'}</p> : null}
      {groups.map((user) => <UserPanel key={user.userId} user={user} killing={state.killing} onKilled={killed} />)}
    </Page>
  );
}

function UserPanel({ user, killing, onKilled }: { user: UserGroup; killing: ReadonlySet<string>; onKilled: (ids: readonly string[], result: string) => void }) {
  const ids = user.sessions.flatMap((s) => s.connections.map((c) => c.id));
  return (
    <section class="panel live-user" aria-label={`Connections of ${user.email}`}>
      <header class="live-head">
        <h2>{user.email} <span class="muted">· {user.connectionCount} connection{user.connectionCount === 1 ? '' : 's'}</span></h2>
        <KillButton what={`every connection of ${user.email}`} label="Kill user"
          kill={async () => {
            const result = await api<KillResult>('POST', '/api/v1/connections/kill', { user: user.email });
            onKilled(ids, `Killed ${result.killed} connection${result.killed === 1 ? '' : 's'} of ${user.email}.`);
          }} />
      </header>
      {user.sessions.map((group) => <SessionBlock key={group.sessionId || 'none'} email={user.email} group={group} killing={killing} onKilled={onKilled} />)}
    </section>
  );
}

function describeSession(group: SessionGroup): string {
  const s = group.session;
  if (!group.sessionId) return 'No sign-in (a certificate issued by an admin)';
  if (!s) return `Sign-in ${group.sessionId}`;
  return `${s.kind === 'browser' ? 'Browser' : 'CLI'} sign-in via ${s.provider} from ${s.clientIp}, ${formatRelative(s.createdAt, new Date())}`;
}

function SessionBlock({ email, group, killing, onKilled }: { email: string; group: SessionGroup; killing: ReadonlySet<string>; onKilled: (ids: readonly string[], result: string) => void }) {
  const ids = group.connections.map((c) => c.id);
  return (
    <div class="live-session">
      <div class="live-head">
        <h3>{describeSession(group)}{group.session?.revokedAt ? <span class="badge bad">revoked</span> : null}</h3>
        {group.sessionId ? (
          <KillButton what={`this sign-in of ${email} and its connections`} label="Kill session"
            kill={async () => {
              const result = await api<KillResult>('POST', `/api/v1/sessions/${encodeURIComponent(group.sessionId)}/kill`);
              onKilled(ids, `Revoked the sign-in of ${email} and killed ${result.killed} connection${result.killed === 1 ? '' : 's'}.`);
            }} />
        ) : null}
      </div>
      <table>
        <thead><tr><th>User</th><th>Socket</th><th>Protocol</th><th>Client IP</th><th>Edge</th><th>Started</th><th>Doing</th><th class="num">Bytes up / down</th><th><span class="sr-only">Actions</span></th></tr></thead>
        <tbody>
          {group.connections.map((c) => <ConnectionRow key={c.id} connection={c} closing={killing.has(c.id)} onKilled={onKilled} />)}
        </tbody>
      </table>
    </div>
  );
}

function ConnectionRow({ connection: c, closing, onKilled }: { connection: LiveConnectionView; closing: boolean; onKilled: (ids: readonly string[], result: string) => void }) {
  return (
    <tr aria-label={`Connection ${c.id}`}>
      <td>{c.email}</td>
      <td>{c.socket}</td>
      <td>{c.protocol}</td>
      <td class="mono">{c.clientIp}{c.country ? ` (${c.country})` : ''}</td>
      <td class="mono">{c.edgeId}</td>
      <td title={formatTimestamp(c.startedAt)}>{formatRelative(c.startedAt, new Date())}</td>
      <td class="mono" title={c.activitySince ? formatTimestamp(c.activitySince) : undefined}>
        {c.activitySince ? `${c.activity || 'idle'} · ${formatRelative(c.activitySince, new Date())}` : ''}
      </td>
      <td class="num">{formatBytes(c.bytesUp)} / {formatBytes(c.bytesDown)}</td>
      <td>
        {closing ? <span class="badge">closing…</span> : (
          <KillButton what={`the ${c.socket} connection of ${c.email} from ${c.clientIp}`} label="Kill"
            kill={async () => {
              await api('DELETE', `/api/v1/connections/${encodeURIComponent(c.id)}`);
              onKilled([c.id], `Killed the ${c.socket} connection of ${c.email}.`);
            }} />
        )}
      </td>
    </tr>
  );
}

/** A Kill button that asks once more before it acts, and shows the refusal if there is one. */
function KillButton({ label, what, kill }: { label: string; what: string; kill: () => Promise<void> }) {
  const [confirming, setConfirming] = useState(false);
  const action = useAction(async () => {
    await kill();
    return true;
  });
  if (!confirming) return <button type="button" class="danger" aria-label={`${label}: ${what}`} onClick={() => setConfirming(true)}>{label}</button>;
  return (
    <span class="confirm" role="group" aria-label={`Confirm: ${label}`}>
      <span>Kill {what}?</span>
      <button type="button" class="danger" disabled={action.pending} onClick={async () => {
        if (await action.run()) setConfirming(false);
      }}>Confirm kill</button>
      <button type="button" disabled={action.pending} onClick={() => { action.clear(); setConfirming(false); }}>Cancel</button>
      <Problem error={action.error} />
    </span>
  );
}
