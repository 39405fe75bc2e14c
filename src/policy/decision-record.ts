// How a decision is written down wherever one is made (the edge's sockets, the authorize
// endpoint, the agents' mesh): the deciding rule's label, the reason a refusal gives (with why
// the allow rules missed), and what observe mode adds to the record. Pure; the callers add who,
// where and which connection, and turn it into their audit events.
import { explain } from './evaluate.js';
import type { PolicySet } from './compile.js';
import { ruleLabel } from './rule.js';
import type { Decision, RequestContext } from './types.js';

/** The deciding rule's label for audit records, '' when no rule decided. */
export function decidingRule(decision: Decision): string {
  return decision.rule ? ruleLabel(decision.rule) : '';
}

/** The summary and, for "no rule allows", why each allow rule did not match (a few). */
export function denialDetail(context: RequestContext, policies: PolicySet, decision: Decision): string {
  if (decision.reason !== 'no-rule-allowed') return decision.summary;
  const misses = explain(context, policies).rules.filter((r) => r.effect === 'allow' && r.outcome !== 'matched').slice(0, 3);
  return misses.length === 0 ? decision.summary : `${decision.summary}: ${misses.map((r) => `${ruleLabel(r)}: ${r.detail}`).join('; ')}`;
}

/** The fields of an observe-mode event (`details` to merge into the request's own). */
export interface ObservedRecord {
  readonly type: 'access.would_deny' | 'access.alarm';
  readonly decision: 'allow' | 'deny';
  readonly rule: string;
  readonly reason: string;
  readonly details: Readonly<Record<string, unknown>>;
}

/**
 * What observe mode adds to a decision's usual record: `access.would_deny` when it was let
 * through only because what denies it observes, `access.alarm` when a policy that recently left
 * observe mode refuses it (`detail`: the refusal as the caller sees it).
 */
export function observedRecord(decision: Decision, detail: string): ObservedRecord | undefined {
  const { wouldDeny, alarm } = decision;
  if (wouldDeny) {
    return { type: 'access.would_deny', decision: 'allow', rule: wouldDeny.rule ? ruleLabel(wouldDeny.rule) : '', reason: wouldDeny.summary, details: { wouldDeny: wouldDeny.reason, allowedBy: decidingRule(decision) } };
  }
  if (alarm && decision.effect === 'deny') {
    const policy = alarm.namespace ? `${alarm.namespace}/${alarm.policy}` : alarm.policy;
    return { type: 'access.alarm', decision: 'deny', rule: decidingRule(decision), reason: `refused since ${policy} left observe mode: ${detail}`, details: { policy } };
  }
  return undefined;
}
