// The dashboard's pages for sockets, connectors, users, groups and identity providers.
import type { PageSpec } from '../../pages.js';

export const INVENTORY_PAGES: readonly PageSpec[] = [
];
