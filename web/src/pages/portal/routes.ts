// The dashboard's pages for a person's own apps and sessions.
import type { PageSpec } from '../../pages.js';

export const PORTAL_PAGES: readonly PageSpec[] = [
];
