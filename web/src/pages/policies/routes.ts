// The dashboard's pages for the policy editor, its history and the test panel. The literal paths
// come before `/policies/:ref`, which would match them too.
import type { PageSpec } from '../../pages.js';

export const POLICY_PAGES: readonly PageSpec[] = [
  { path: '/policies', title: 'Policies', nav: 'Policies', admin: true, load: () => import('./policies.js').then((m) => m.PoliciesPage) },
  { path: '/policies/test', title: 'Policy test', nav: 'Policy test', admin: true, load: () => import('./test-panel.js').then((m) => m.PolicyTestPage) },
  { path: '/policies/new', title: 'New policy', admin: true, load: () => import('./policy.js').then((m) => m.NewPolicyPage) },
  { path: '/policies/:ref', title: 'Policy', admin: true, load: () => import('./policy.js').then((m) => m.PolicyPage) },
];
