// The shape every criterion (who, where, when, what) compiles a rule's block into.
import type { Facts } from '../facts.js';
import type { Rule, RuleOutcome } from '../types.js';

export interface Condition {
  /** `matched`, or the outcome naming what failed. Allocation-free: this is the hot path. */
  test(facts: Facts): RuleOutcome;
  /** The sentence a person reads for an outcome `test` returned (explanations only). */
  detail(facts: Facts, outcome: RuleOutcome): string;
  /** Time conditions only: the first instant after `at` at which the condition starts or stops matching. */
  nextChange?(at: number): number | undefined;
}

export interface Criterion {
  readonly name: 'who' | 'where' | 'when' | 'what';
  /**
   * The rule's block compiled, or undefined when the block does not constrain anything.
   * Throws an Error whose message starts with the field path (`where.ip[2]: …`) for a value
   * that cannot be compiled.
   */
  compile(rule: Rule): Condition | undefined;
}

/** `a, b, c`, shortened for long lists so that explanations stay one line. */
export function listText(items: Iterable<string>, max = 6): string {
  const all = [...items];
  return all.length <= max ? all.join(', ') : `${all.slice(0, max).join(', ')}, … (${all.length} in all)`;
}
