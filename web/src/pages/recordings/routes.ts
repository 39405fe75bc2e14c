// The dashboard's pages for recordings: list, replay, watch live.
import type { PageSpec } from '../../pages.js';

export const RECORDING_PAGES: readonly PageSpec[] = [
];
