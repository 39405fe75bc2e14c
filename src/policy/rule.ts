// One rule compiled: its conditions from the explicit CRITERIA list (in the order
// explanations report the first failure: who, where, when, what), what an allowing rule grants
// (session limit, read-only, SSH logins), and the labels decisions print.
import { whatCriterion } from './criteria/what.js';
import { whenCriterion } from './criteria/when.js';
import { whereCriterion } from './criteria/where.js';
import { whoCriterion } from './criteria/who.js';
import type { Condition, Criterion } from './criteria/condition.js';
import type { Facts } from './facts.js';
import { parseDuration } from './syntax.js';
import type { Action, Effect, Rule, RuleOutcome, RuleRef } from './types.js';

/**
 * How decisions, 403 pages and audit records name a rule: `namespace/policy#rule`; an unnamed rule
 * is already `policy#n`, so it is not repeated.
 */
export function ruleLabel(ref: Pick<RuleRef, 'namespace' | 'policy' | 'rule'>): string {
  const name = ref.rule.startsWith(`${ref.policy}#`) ? ref.rule : `${ref.policy}#${ref.rule}`;
  return ref.namespace ? `${ref.namespace}/${name}` : name;
}

export const CRITERIA: readonly Criterion[] = [whoCriterion, whereCriterion, whenCriterion, whatCriterion];

export const PROTOCOLS: readonly Action['protocol'][] = ['http', 'ssh', 'tls', 'database'];
/** Position in PROTOCOLS. */
export const PROTOCOL_INDEX: Readonly<Record<Action['protocol'], number>> = { http: 0, ssh: 1, tls: 2, database: 3 };
export const PROTOCOL_BIT: Readonly<Record<Action['protocol'], number>> = { http: 1, ssh: 2, tls: 4, database: 8 };
const ALL_PROTOCOLS = 15;

export interface CompiledRule {
  readonly ref: RuleRef;
  readonly effect: Effect;
  /** The protocols the rule can match (those with a `what` block, or all without one). */
  readonly protocols: number;
  /** Position in evaluation order across the whole set: "the first matching rule" is the lowest. */
  readonly order: number;
  readonly conditions: readonly Condition[];
  /** Every condition matches: the conditions' tests fused into one function for the hot path. */
  readonly matches: (facts: Facts) => boolean;
  /** The conditions with a `nextChange` (time conditions). */
  readonly timed: readonly Condition[];
  /** `allowed by rule corp/support-access#1` or `denied by rule …`. */
  readonly summary: string;
  readonly sshLogins: readonly string[] | undefined;
  readonly maxSessionMs: number | undefined;
  readonly readOnly: boolean;
  /** The upstream roles an allow rule maps database sessions to (`what.database.users`). */
  readonly databaseUsers: readonly string[] | undefined;
  /** Its policy is in observe mode: a denial it owns is let through (see evaluate). */
  readonly observe: boolean;
  /** Epoch ms until which a denial its policy owns raises an alarm; absent = never. */
  readonly alarmUntil: number | undefined;
}

/**
 * A condition's test run at most once per request: rules share conditions, and the last
 * Facts seen identifies the request (evaluation is synchronous).
 */
function oncePerRequest(condition: Condition): Condition {
  const test = condition.test;
  let lastFacts: Facts | undefined;
  let last: RuleOutcome = 'matched';
  return {
    ...condition,
    test: (facts) => {
      if (facts !== lastFacts) {
        last = test(facts);
        lastFacts = facts;
      }
      return last;
    },
  };
}

/**
 * Conditions with the same text are compiled once per set and shared (`shared`), so a time
 * window used by 500 policies keeps one memo of its next change and is tested once per request.
 */
export function compileRule(rule: Rule, index: number, policy: { name: string; namespace: string; observe?: boolean; alarmUntil?: number }, order: number, shared: Map<string, Condition | undefined>): CompiledRule {
  const conditions: Condition[] = [];
  for (const criterion of CRITERIA) {
    const key = JSON.stringify([criterion.name, rule.effect, rule[criterion.name] ?? null]);
    let condition = shared.get(key);
    if (!shared.has(key)) {
      const compiled = criterion.compile(rule);
      condition = compiled && oncePerRequest(compiled);
      shared.set(key, condition);
    }
    if (condition) conditions.push(condition);
  }
  const ssh = rule.what?.ssh;
  const maxSessionMs = ssh?.max_session === undefined ? undefined : parseDuration(ssh.max_session);
  if (ssh?.max_session !== undefined && maxSessionMs === undefined) throw new Error(`what.ssh.max_session: expected a duration such as 90s, 30m, 2h or 1d, got "${ssh.max_session}"`);
  const what = rule.what;
  const protocols = what ? PROTOCOLS.reduce((bits, p) => (what[p] ? bits | PROTOCOL_BIT[p] : bits), 0) : ALL_PROTOCOLS;
  const name = rule.name ?? `${policy.name}#${index + 1}`;
  const ref = { policy: policy.name, namespace: policy.namespace, rule: name, effect: rule.effect };
  return {
    ref,
    effect: rule.effect,
    protocols,
    order,
    conditions,
    matches: fuse(conditions),
    timed: conditions.filter((c) => c.nextChange !== undefined),
    summary: `${rule.effect === 'allow' ? 'allowed' : 'denied'} by rule ${ruleLabel(ref)}`,
    sshLogins: ssh?.logins,
    maxSessionMs,
    readOnly: rule.what?.database?.read_only === true,
    databaseUsers: rule.what?.database?.users,
    observe: policy.observe === true,
    alarmUntil: policy.alarmUntil,
  };
}

/** One closure per rule instead of a walk over an array of objects: fewer loads per rule. */
function fuse(conditions: readonly Condition[]): (facts: Facts) => boolean {
  // One condition per criterion, and `who` is always there: 1 to 4 of them.
  const [a, b, c, d] = conditions.map((condition) => condition.test);
  switch (conditions.length) {
    case 1: return (f) => a!(f) === 'matched';
    case 2: return (f) => a!(f) === 'matched' && b!(f) === 'matched';
    case 3: return (f) => a!(f) === 'matched' && b!(f) === 'matched' && c!(f) === 'matched';
    default: return (f) => a!(f) === 'matched' && b!(f) === 'matched' && c!(f) === 'matched' && d!(f) === 'matched';
  }
}

/** The outcome with its sentence: the failing condition's, or every condition's when all match. */
export function explainRule(rule: CompiledRule, facts: Facts): { outcome: RuleOutcome; detail: string } {
  for (const condition of rule.conditions) {
    const outcome = condition.test(facts);
    if (outcome !== 'matched') return { outcome, detail: condition.detail(facts, outcome) };
  }
  return { outcome: 'matched', detail: rule.conditions.map((c) => c.detail(facts, 'matched')).join('; ') };
}

