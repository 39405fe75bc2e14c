// Every page of the dashboard, in the order of the navigation. `admin` pages are shown to members
// of the admin group only (the API refuses their data to anyone else all the same).
import type { FunctionComponent } from 'preact';
import { LIVE_PAGES } from './pages/live/routes.js';
import { INVENTORY_PAGES } from './pages/inventory/routes.js';
import { POLICY_PAGES } from './pages/policies/routes.js';
import { AUDIT_PAGES } from './pages/audit/routes.js';
import { RECORDING_PAGES } from './pages/recordings/routes.js';
import { PORTAL_PAGES } from './pages/portal/routes.js';
import { TERMINAL_PAGES } from './pages/terminal/routes.js';

export interface PageProps {
  readonly params: Readonly<Record<string, string>>;
}

export interface PageSpec {
  readonly path: string;
  readonly title: string;
  /** Shown in the navigation under this label; pages without one are reached by links. */
  readonly nav?: string;
  readonly admin: boolean;
  readonly load: () => Promise<FunctionComponent<PageProps>>;
}

/**
 * Pages load on first visit, so the first screen downloads only what it shows. Each area lists its
 * own pages in `pages/<area>/routes.ts`; this order is the navigation's, and the first page a
 * person may see is their start page (the overview for admins, their apps for everyone else).
 */
export const PAGES: readonly PageSpec[] = [
  ...LIVE_PAGES,
  ...INVENTORY_PAGES,
  ...POLICY_PAGES,
  ...AUDIT_PAGES,
  ...RECORDING_PAGES,
  ...PORTAL_PAGES,
  ...TERMINAL_PAGES,
];
