// Every problem of a policy's source text placed on its line and column, for an editor: syntax
// errors where the parser stopped, schema errors at the node the field path names (the key of an
// unknown field, the value of a wrong one, the nearest written parent of a missing one).
import { LineCounter, isMap, isScalar, isSeq, parseDocument } from 'yaml';
import type { Node } from 'yaml';
import { policyIssues, sourceFormat, syntaxProblem } from './document.js';
import type { PolicyIssue } from './document.js';
import type { PolicyDocument } from './types.js';

export interface SourceProblem {
  /** 1-based. */
  readonly line: number;
  /** 1-based. */
  readonly column: number;
  /** The field as people write it (`rules[0].effect`); '' for a syntax error or the whole document. */
  readonly path: string;
  readonly message: string;
}

export type SourceCheck = { readonly document: PolicyDocument; readonly problems: readonly [] } | { readonly problems: readonly SourceProblem[] };

/** The offset where the issue's field starts in the source, walking the parsed nodes along its path. */
function offsetOf(contents: Node | null, issue: PolicyIssue): number {
  let node: unknown = contents;
  let offset = contents?.range?.[0] ?? 0;
  for (const [i, part] of issue.path.entries()) {
    const last = i === issue.path.length - 1;
    if (isMap(node)) {
      const pair = node.items.find((p) => (isScalar(p.key) ? String(p.key.value) : String(p.key)) === String(part));
      if (!pair) break;
      const key = pair.key as Node | null;
      const value = pair.value as Node | null;
      const target = last && issue.key ? key : value ?? key;
      offset = target?.range?.[0] ?? offset;
      node = value;
    } else if (isSeq(node) && typeof part === 'number') {
      const item = node.items[part] as Node | undefined;
      if (!item) break;
      offset = item.range?.[0] ?? offset;
      node = item;
    } else {
      break;
    }
  }
  return offset;
}

/** The source parsed and checked: the document, or every problem with its position. */
export function checkPolicySource(source: string): SourceCheck {
  const format = sourceFormat(source);
  const lines = new LineCounter();
  const parsed = parseDocument(source, { lineCounter: lines, prettyErrors: true });
  if (parsed.errors.length > 0) {
    return { problems: parsed.errors.map((error) => {
      const problem = syntaxProblem(error, source, 'yaml');
      return { line: problem.line ?? 1, column: problem.column ?? 1, path: '', message: problem.message };
    }) };
  }
  let value: unknown = parsed.toJS();
  if (format === 'json') {
    // YAML reads more than JSON allows (trailing commas, comments): JSON text must be JSON.
    try {
      value = JSON.parse(source);
    } catch (cause) {
      const problem = syntaxProblem(cause, source, 'json');
      return { problems: [{ line: problem.line ?? 1, column: problem.column ?? 1, path: '', message: problem.message }] };
    }
  }
  const checked = policyIssues(value);
  if ('document' in checked) return { document: checked.document, problems: [] };
  return {
    problems: checked.issues.map((issue) => {
      const at = lines.linePos(offsetOf(parsed.contents, issue));
      return { line: at.line, column: at.col, path: issue.field, message: issue.message };
    }),
  };
}
