// The dashboard's pages for the audit trail and HTTP log.
import type { PageSpec } from '../../pages.js';

export const AUDIT_PAGES: readonly PageSpec[] = [
];
