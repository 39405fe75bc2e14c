// `/apps`: the sockets the signed-in person may reach now (the server asks the policy engine),
// with a link for HTTP sockets, commands to copy for tls and ssh ones, and the web terminal
// for managed SSH sockets.
import './portal.css';
import { useEffect, useState } from 'preact/hooks';
import type { AppList, AppView } from '../../../../src/control/portal-types.js';
import { api, query } from '../../api.js';
import { Link } from '../../router.js';
import { CopyButton, Page, Problem, Progress, useAction, useResource } from '../../ui.js';

const PAGE_SIZE = 100;

export function AppsPage() {
  const first = useResource<AppList>(`/api/v1/me/apps${query({ limit: PAGE_SIZE })}`);
  const [later, setLater] = useState<{ apps: AppView[]; next?: string | undefined }>({ apps: [] });
  useEffect(() => setLater({ apps: [] }), [first.data]);
  const more = useAction(async (after: string) => {
    const page = await api<AppList>('GET', `/api/v1/me/apps${query({ limit: PAGE_SIZE, after })}`);
    setLater((l) => ({ apps: [...l.apps, ...page.apps], next: page.next }));
  });
  const apps = [...(first.data?.apps ?? []), ...later.apps];
  const next = later.apps.length > 0 ? later.next : first.data?.next;
  return (
    <Page title="My apps">
      <Progress active={first.loading} label="Finding your apps…" />
      <Problem error={first.error ?? more.error} />
      {first.data && apps.length === 0 ? <p class="notice">No app is open to you right now. An admin decides who may reach what.</p> : null}
      <ul class="apps" aria-label="Apps">
        {apps.map((app) => <AppCard key={app.name} app={app} />)}
      </ul>
      {next ? <div class="pager"><button type="button" disabled={more.pending} onClick={() => void more.run(next)}>Load more</button></div> : null}
    </Page>
  );
}

function AppCard({ app }: { app: AppView }) {
  return (
    <li class="panel app" aria-label={app.name}>
      <header class="app-head">
        <h2>{app.url ? <a href={app.url} target="_blank" rel="noopener">{app.name}</a> : app.name}</h2>
        <span class="badge">{app.type}</span>
        {app.access === 'public' ? <span class="badge">public</span> : null}
      </header>
      {app.description ? <p class="muted">{app.description}</p> : null}
      {app.url ? <p><a class="button" href={app.url} target="_blank" rel="noopener">Open {app.name}</a></p> : null}
      {app.logins && app.logins.length > 0 ? <p>Logins: {app.logins.map((l) => <code key={l} class="login">{l}</code>)}</p> : null}
      {app.terminal ? <p><Link class="button" href={app.terminal}>Open the web terminal</Link></p> : null}
      {app.commands.map((c) => (
        <div class="command" key={c.command}>
          <span class="muted">{c.label}</span>
          <div class="command-line"><pre class="block">{c.command}</pre><CopyButton text={c.command} /></div>
        </div>
      ))}
    </li>
  );
}
