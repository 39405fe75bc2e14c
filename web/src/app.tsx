// The dashboard's frame: who is signed in (from /api/v1/me), the navigation their role allows,
// and the page the location names. Signed-out visitors go to the control host's sign-in form.
import type { FunctionComponent } from 'preact';
import { useEffect, useState } from 'preact/hooks';
import type { MeView } from '../../src/control/dashboard-types.js';
import { api, ApiError, useCsrfToken } from './api.js';
import { firstMatch } from './lib/route.js';
import { PAGES } from './pages.js';
import type { PageProps, PageSpec } from './pages.js';
import { Link, Router, useLocation } from './router.js';
import { Problem, Progress } from './ui.js';

type Me = { state: 'loading' } | { state: 'ready'; me: MeView } | { state: 'failed'; error: ApiError };

function useMe(): Me {
  const [me, setMe] = useState<Me>({ state: 'loading' });
  useEffect(() => {
    api<MeView>('GET', '/api/v1/me').then(
      (view) => {
        if (view.csrf) useCsrfToken(view.csrf);
        setMe({ state: 'ready', me: view });
      },
      (err: unknown) => {
        if (err instanceof ApiError && err.status === 401) {
          // Back to the page that was asked for once signed in (the control host accepts only its own pages).
          window.location.assign(`/auth/login?return_to=${encodeURIComponent(window.location.pathname + window.location.search)}`);
          return;
        }
        setMe({ state: 'failed', error: err instanceof ApiError ? err : new ApiError(0, 'network', String(err)) });
      },
    );
  }, []);
  return me;
}

export function App() {
  const me = useMe();
  if (me.state === 'loading') return <Progress active label="Signing in…" />;
  if (me.state === 'failed') return <main class="solo"><Problem error={me.error} /></main>;
  return <Router><Shell me={me.me} /></Router>;
}

function Shell({ me }: { me: MeView }) {
  const { path } = useLocation();
  const pages = PAGES.filter((p) => me.admin || !p.admin);
  const home = pages[0]?.path ?? '/';
  const match = firstMatch(pages.map((p) => p.path), path === '/' ? home : path);
  const page = match ? pages.find((p) => p.path === match.pattern) : undefined;
  return (
    <div class="shell">
      <nav class="nav" aria-label="Main">
        <div class="brand">Postern</div>
        <ul>
          {pages.filter((p) => p.nav).map((p) => (
            <li key={p.path}><Link href={p.path} aria-current={page?.path === p.path ? 'page' : undefined}>{p.nav}</Link></li>
          ))}
        </ul>
        <form class="who" method="post" action="/auth/logout">
          <span title={me.groups.join(', ')}>{me.email}</span>
          {me.admin ? <span class="role">admin</span> : null}
          <input type="hidden" name="csrf" value={me.csrf ?? ''} />
          <button type="submit">Sign out</button>
        </form>
      </nav>
      <main class="main">
        {page && match ? <LazyPage key={page.path} spec={page} params={match.params} /> : <NotFound />}
      </main>
    </div>
  );
}

function LazyPage({ spec, params }: { spec: PageSpec; params: PageProps['params'] }) {
  const [component, setComponent] = useState<{ C: FunctionComponent<PageProps> } | { error: ApiError }>();
  useEffect(() => {
    spec.load().then((C) => setComponent({ C }), (err: unknown) => setComponent({ error: new ApiError(0, 'load_failed', `this page could not be loaded: ${String(err)}`) }));
  }, [spec]);
  if (!component) return <Progress active />;
  if ('error' in component) return <Problem error={component.error} />;
  return <component.C params={params} />;
}

function NotFound() {
  return <section class="page"><h1>Not found</h1><p>There is no such page. <Link href="/">Back to the start</Link>.</p></section>;
}
