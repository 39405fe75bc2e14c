// The dashboard's pages for a person's own apps and sessions.
import type { PageSpec } from '../../pages.js';

export const PORTAL_PAGES: readonly PageSpec[] = [
  { path: '/apps', title: 'My apps', nav: 'My apps', admin: false, load: () => import('./apps.js').then((m) => m.AppsPage) },
  { path: '/me/sessions', title: 'My sessions', nav: 'My sessions', admin: false, load: () => import('./my-sessions.js').then((m) => m.MySessionsPage) },
];
