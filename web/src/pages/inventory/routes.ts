// The dashboard's pages for sockets, connectors, users, groups and identity providers.
import type { PageSpec } from '../../pages.js';

export const INVENTORY_PAGES: readonly PageSpec[] = [
  { path: '/sockets', title: 'Sockets', nav: 'Sockets', admin: true, load: () => import('./sockets.js').then((m) => m.SocketsPage) },
  { path: '/sockets/:name', title: 'Socket', admin: true, load: () => import('./socket.js').then((m) => m.SocketPage) },
  { path: '/connectors', title: 'Connectors', nav: 'Connectors', admin: true, load: () => import('./connectors.js').then((m) => m.ConnectorsPage) },
  { path: '/users', title: 'Users and groups', nav: 'Users', admin: true, load: () => import('./users.js').then((m) => m.UsersPage) },
  { path: '/identity-providers', title: 'Sign-in providers', nav: 'Sign-in', admin: true, load: () => import('./identity-providers.js').then((m) => m.IdentityProvidersPage) },
];
