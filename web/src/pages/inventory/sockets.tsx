// Sockets: every published service with its type, upstream, whether a connector serves it now
// and its tags; a filter by text and tag kept in the URL; and the form that creates one.
import { useState } from 'preact/hooks';
import { api, query } from '../../api.js';
import type { CreateSocketBody, SocketView } from '../../../../src/control/inventory-types.js';
import { filterSockets, tagChoices } from '../../lib/inventory.js';
import { Link, useLocation } from '../../router.js';
import { Page, Problem, Progress, useAction } from '../../ui.js';
import { LoadMore, Online, Tags, usePagedList } from './parts.js';
import { SocketForm } from './socket-form.js';

export function SocketsPage() {
  const { search, navigate } = useLocation();
  const text = search.get('q') ?? '';
  const tag = search.get('tag') ?? '';
  const list = usePagedList<SocketView>('/api/v1/sockets', 'sockets');
  const [creating, setCreating] = useState(false);
  const create = useAction((body: CreateSocketBody) => api<SocketView>('POST', '/api/v1/sockets', body));
  const setFilter = (next: { q?: string; tag?: string }) => navigate(`/sockets${query({ q: text, tag, ...next })}`, { replace: true });
  const shown = filterSockets(list.rows, { text, tag });
  const onCreate = async (body: CreateSocketBody) => {
    const created = await create.run(body);
    if (created) navigate(`/sockets/${encodeURIComponent(created.name)}`);
  };
  return (
    <Page title="Sockets" actions={creating ? null : <button type="button" class="primary" onClick={() => { create.clear(); setCreating(true); }}>Create socket</button>}>
      {creating ? (
        <div class="panel">
          <h2>Create socket</h2>
          <Problem error={create.error} />
          <SocketForm onSubmit={onCreate} onCancel={() => setCreating(false)} error={create.error} pending={create.pending} />
        </div>
      ) : null}
      <div class="filters" role="search">
        <label>Search<input type="search" value={text} onInput={(e) => setFilter({ q: (e.currentTarget as HTMLInputElement).value })} placeholder="name, upstream, description" /></label>
        <label>Tag
          <select value={tag} onChange={(e) => setFilter({ tag: (e.currentTarget as HTMLSelectElement).value })}>
            <option value="">any</option>
            {[...new Set([...tagChoices(list.rows), ...(tag ? [tag] : [])])].map((t) => <option key={t} value={t}>{t}</option>)}
          </select>
        </label>
      </div>
      <Problem error={list.error} />
      <Progress active={list.loading} label="Loading sockets…" />
      <table>
        <thead><tr><th>Name</th><th>Type</th><th>Upstream</th><th>Connector</th><th>Tags</th></tr></thead>
        <tbody>
          {shown.map((s) => (
            <tr key={s.id}>
              <td><Link href={`/sockets/${encodeURIComponent(s.name)}`}>{s.name}</Link></td>
              <td>{s.type}</td>
              <td class="mono">{s.upstream ?? <span class="muted">–</span>}</td>
              <td><Online online={s.online} /></td>
              <td><Tags tags={s.tags} /></td>
            </tr>
          ))}
          {!list.loading && shown.length === 0 ? <tr><td colSpan={5} class="muted">{list.rows.length === 0 ? 'No sockets yet: create one to publish a service.' : 'No socket matches the filter.'}</td></tr> : null}
        </tbody>
      </table>
      <LoadMore list={list} />
    </Page>
  );
}
