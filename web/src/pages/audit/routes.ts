// The dashboard's pages for the audit trail and HTTP log.
import type { PageSpec } from '../../pages.js';

export const AUDIT_PAGES: readonly PageSpec[] = [
  { path: '/audit', title: 'Audit', nav: 'Audit', admin: true, load: () => import('./audit.js').then((m) => m.AuditPage) },
];
