// The dashboard's pages for the web terminal.
import type { PageSpec } from '../../pages.js';

export const TERMINAL_PAGES: readonly PageSpec[] = [
];
