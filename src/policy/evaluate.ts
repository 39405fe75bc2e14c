// Deciding one request: deny beats allow, nothing matching denies. `evaluate` is the hot path:
// no explanation strings, only the rules of the socket's policies for the action's protocol,
// denies first (one matching ends it); `explain` gives the same decision plus every applicable
// rule's outcome, for `policy test` and audit.
//
// Observe mode: a policy in `mode: observe` owns two kinds of denial, which are let through
// with `wouldDeny` saying what enforcing it would have done: its own deny rules (unless an
// enforcing deny matches too, or nothing allows and the default deny is enforced), and the
// default deny ("no rule allows") of a protocol on a socket where no enforcing policy has allow
// rules for it but an observing policy applies. Where an enforcing policy allows some people,
// everyone else stays refused: observing one policy never opens what another one restricts.
// Identity is never observed: an anonymous request is refused as before.
import type { PolicySet } from './compile.js';
import { Facts } from './facts.js';
import { PROTOCOL_INDEX, explainRule } from './rule.js';
import type { CompiledRule } from './rule.js';
import type { Decision, Explanation, RequestContext, RuleExplanation } from './types.js';

type Draft = { -readonly [K in keyof Decision]: Decision[K] };

const rulesText = (n: number) => `${n} rule${n === 1 ? '' : 's'} checked`;

export function evaluate(ctx: RequestContext, set: PolicySet): Decision {
  const { rules, byProtocol } = set.applicable(ctx.socket);
  if (rules.length === 0) return { effect: 'deny', reason: 'no-policy', summary: `denied: no policy applies to ${ctx.socket.kind === 'service' ? 'service' : 'socket'} ${ctx.socket.name}` };
  const facts = new Facts(ctx, ctx.action);
  const protocol = ctx.action.protocol;
  const lists = byProtocol[PROTOCOL_INDEX[protocol]]!;
  let deny: CompiledRule | undefined;
  let observedDeny: CompiledRule | undefined;
  for (let i = 0; i < lists.deny.length; i++) {
    const rule = lists.deny[i]!;
    if (!rule.matches(facts)) continue;
    if (!rule.observe) {
      deny = rule;
      break;
    }
    observedDeny ??= rule;
  }
  let allow: CompiledRule | undefined;
  let maxSessionMs: number | undefined;
  let readOnly = false;
  for (let i = 0; i < lists.allow.length && !deny; i++) {
    // Once allowed, another allow rule only matters for what it adds to the decision.
    if (allow && i > lists.lastGrant) break;
    const rule = lists.allow[i]!;
    const shortens = protocol === 'ssh' && rule.maxSessionMs !== undefined && (maxSessionMs === undefined || rule.maxSessionMs < maxSessionMs);
    const restricts = protocol === 'database' && rule.readOnly && !readOnly;
    if (allow && !shortens && !restricts) continue;
    if (!rule.matches(facts)) continue;
    allow ??= rule;
    if (shortens) maxSessionMs = rule.maxSessionMs;
    if (restricts) readOnly = true;
  }
  let recheck = Number.POSITIVE_INFINITY;
  // Rules for other protocols cannot change this decision: only these rules' windows count.
  for (let i = 0; i < lists.timed.length; i++) {
    const t = lists.timed[i]!.nextChange!(facts.at);
    if (t !== undefined && t < recheck) recheck = t;
  }
  const recheckAt = recheck === Number.POSITIVE_INFINITY ? undefined : new Date(recheck);
  const decided = deny ?? allow;
  if (decided) {
    const decision: Draft = { effect: decided.effect, reason: deny ? 'rule-denied' : 'rule-allowed', rule: decided.ref, summary: decided.summary };
    if (!deny && maxSessionMs !== undefined) decision.maxSessionMs = maxSessionMs;
    if (!deny && readOnly) decision.readOnly = true;
    if (!deny && ctx.action.protocol === 'database' && allow!.databaseUsers) decision.databaseRole = ctx.action.role ?? allow!.databaseUsers[0]!;
    if (recheckAt) decision.recheckAt = recheckAt;
    if (!deny && observedDeny) decision.wouldDeny = { reason: 'rule-denied', rule: observedDeny.ref, summary: `would be ${observedDeny.summary}` };
    if (deny && deny.alarmUntil !== undefined && deny.alarmUntil > facts.at) decision.alarm = { policy: deny.ref.policy, namespace: deny.ref.namespace };
    return decision;
  }
  // Signing in could help only an anonymous request on a socket with something to allow.
  const unauthenticated = !facts.authenticated && lists.allow.length > 0;
  const summary = `denied: no rule allows this (${rulesText(rules.length)})`;
  if (facts.authenticated && !lists.enforcedDefault) {
    const wouldDeny = observedDeny
      ? { reason: 'rule-denied' as const, rule: observedDeny.ref, summary: `would be ${observedDeny.summary}` }
      : { reason: 'no-rule-allowed' as const, summary: `would be ${summary}` };
    const decision: Draft = { effect: 'allow', reason: 'observed', summary: `allowed in observe mode: ${wouldDeny.summary}`, wouldDeny };
    if (recheckAt) decision.recheckAt = recheckAt;
    return decision;
  }
  const decision: Draft = unauthenticated
    ? { effect: 'deny', reason: 'user-unauthenticated', summary: `denied: not signed in (${rulesText(rules.length)})` }
    : { effect: 'deny', reason: 'no-rule-allowed', summary };
  if (recheckAt) decision.recheckAt = recheckAt;
  const alarmed = decision.reason === 'no-rule-allowed' ? lists.alarmed.find((r) => r.alarmUntil! > facts.at) : undefined;
  if (alarmed) decision.alarm = { policy: alarmed.ref.policy, namespace: alarmed.ref.namespace };
  return decision;
}

export function explain(ctx: RequestContext, set: PolicySet): Explanation {
  const decision = evaluate(ctx, set);
  const facts = new Facts(ctx, ctx.action);
  const rules: RuleExplanation[] = set.applicable(ctx.socket).rules.map((rule) => ({ ...rule.ref, ...explainRule(rule, facts) }));
  return { ...decision, rules };
}
