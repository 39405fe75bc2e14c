// Small adapters of the edge around access decisions: the path HTTP rules match, and the label
// of the rule that decided, as audit records carry it.
import { ruleLabel } from '../policy/index.js';
import type { Decision } from '../policy/index.js';

/** The deciding rule's label for audit records, '' when no rule decided. */
export function decidingRule(decision: Decision): string {
  return decision.rule ? ruleLabel(decision.rule) : '';
}

/** The request path without its query, as HTTP rules match it. */
export function requestPath(url: string | undefined): string {
  const path = (url ?? '/').split('?')[0] ?? '/';
  return path.startsWith('/') ? path : `/${path}`;
}
