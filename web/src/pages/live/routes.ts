// The dashboard's pages for overview and live sessions.
import type { PageSpec } from '../../pages.js';

export const LIVE_PAGES: readonly PageSpec[] = [
];
