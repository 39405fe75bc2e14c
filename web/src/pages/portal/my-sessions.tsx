// `/me/sessions`: the signed-in person's own sign-ins (browsers and CLIs), this one marked; any
// of them can be signed out here, and signing out this one ends this browser's session.
import './portal.css';
import { useEffect, useState } from 'preact/hooks';
import type { MySessionList, MySessionView } from '../../../../src/control/portal-types.js';
import { api, query } from '../../api.js';
import { formatRelative, formatTimestamp } from '../../lib/format.js';
import { Page, Problem, Progress, useAction, useResource } from '../../ui.js';

const PAGE_SIZE = 50;

export function MySessionsPage() {
  const first = useResource<MySessionList>(`/api/v1/me/sessions${query({ limit: PAGE_SIZE })}`);
  const [older, setOlder] = useState<{ sessions: MySessionView[]; next?: string | undefined }>({ sessions: [] });
  const [ended, setEnded] = useState<ReadonlySet<string>>(new Set());
  useEffect(() => setOlder({ sessions: [] }), [first.data]);
  const more = useAction(async (before: string) => {
    const page = await api<MySessionList>('GET', `/api/v1/me/sessions${query({ limit: PAGE_SIZE, before })}`);
    setOlder((o) => ({ sessions: [...o.sessions, ...page.sessions], next: page.next }));
  });
  const signOut = useAction(async (session: MySessionView) => {
    await api<void>('DELETE', `/api/v1/me/sessions/${encodeURIComponent(session.id)}`);
    if (session.current) return window.location.assign('/auth/login');
    setEnded((e) => new Set([...e, session.id]));
  });
  const now = new Date();
  const sessions = [...(first.data?.sessions ?? []), ...older.sessions].filter((s) => !ended.has(s.id));
  const next = older.sessions.length > 0 ? older.next : first.data?.next;
  return (
    <Page title="My sessions">
      <Progress active={first.loading} label="Loading your sign-ins…" />
      <Problem error={first.error ?? more.error ?? signOut.error} />
      <table>
        <thead><tr><th>Signed in</th><th>Kind</th><th>With</th><th>From</th><th>Client</th><th>Last seen</th><th>Expires</th><th><span class="visually-hidden">Actions</span></th></tr></thead>
        <tbody>
          {sessions.map((s) => (
            <tr key={s.id} aria-label={`sign-in ${s.id}`}>
              <td>{formatTimestamp(s.createdAt)} {s.current ? <span class="badge ok">this browser</span> : null}</td>
              <td>{s.kind === 'cli' ? 'CLI' : 'browser'}</td>
              <td>{s.provider}</td>
              <td class="mono">{s.clientIp}</td>
              <td class="agent" title={s.userAgent}>{s.userAgent || '—'}</td>
              <td>{formatRelative(s.lastSeenAt, now)}</td>
              <td>{formatTimestamp(s.expiresAt)}</td>
              <td><button type="button" class="danger" disabled={signOut.pending} onClick={() => void signOut.run(s)}>{s.current ? 'Sign out here' : 'Sign out'}</button></td>
            </tr>
          ))}
        </tbody>
      </table>
      {next ? <div class="pager"><button type="button" disabled={more.pending} onClick={() => void more.run(next)}>Load older</button></div> : null}
    </Page>
  );
}
