// `policy test` as a person reads it: the decision, notes on the inputs, then one line per rule
// (`=>` the deciding rule, ` *` another that matched, else why it did not). The CLI prints these
// lines and the dashboard shows them, so both say exactly the same.

export interface ExplainedRuleLine {
  readonly label: string;
  readonly effect: string;
  readonly outcome: string;
  readonly detail: string;
}

export interface ExplainedDecision {
  readonly effect: 'allow' | 'deny';
  readonly summary: string;
  /** The deciding rule's label, or null. */
  readonly rule: string | null;
  readonly recheckAt: string | null;
  readonly rules: readonly ExplainedRuleLine[];
  readonly knownUser: boolean;
}

/** The mark before a rule: `=>` decided, ` *` matched too, two spaces otherwise. */
export function ruleMark(rule: ExplainedRuleLine, decidingRule: string | null): '=>' | ' *' | '  ' {
  if (rule.outcome !== 'matched') return '  ';
  return rule.label === decidingRule ? '=>' : ' *';
}

export function explanationLines(answer: ExplainedDecision, email: string): string[] {
  const lines = [`${answer.effect === 'allow' ? 'ALLOW' : 'DENY'}: ${answer.summary}`];
  if (!answer.knownUser) lines.push(`  (note: ${email} is not a user yet; groups are only those given)`);
  if (answer.recheckAt) lines.push(`  decided again at ${answer.recheckAt} (a time window changes then)`);
  for (const rule of answer.rules) {
    lines.push(`${ruleMark(rule, answer.rule)} ${rule.effect.padEnd(5)} ${rule.label}: ${rule.outcome === 'matched' ? 'matched' : `${rule.outcome}: ${rule.detail}`}`);
  }
  return lines;
}
