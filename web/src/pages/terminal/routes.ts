// The dashboard's pages for the web terminal: a form to pick a managed SSH socket and a login, and
// the terminal itself (the portal links to `/terminal/<socket>?login=<login>`).
import type { PageSpec } from '../../pages.js';

export const TERMINAL_PAGES: readonly PageSpec[] = [
  { path: '/terminal', title: 'Terminal', nav: 'Terminal', admin: false, load: () => import('./terminal.js').then((m) => m.TerminalStartPage) },
  { path: '/terminal/:socket', title: 'Terminal', admin: false, load: () => import('./terminal.js').then((m) => m.TerminalPage) },
];
