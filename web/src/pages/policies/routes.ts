// The dashboard's pages for the policy editor, its history and the test panel.
import type { PageSpec } from '../../pages.js';

export const POLICY_PAGES: readonly PageSpec[] = [
];
