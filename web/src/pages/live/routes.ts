// The dashboard's pages for overview and live sessions.
import type { PageSpec } from '../../pages.js';

export const LIVE_PAGES: readonly PageSpec[] = [
  { path: '/overview', title: 'Overview', nav: 'Overview', admin: true, load: () => import('./overview.js').then((m) => m.OverviewPage) },
  { path: '/sessions', title: 'Live sessions', nav: 'Sessions', admin: true, load: () => import('./sessions.js').then((m) => m.SessionsPage) },
];
