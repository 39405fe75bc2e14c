// The policy editor's arithmetic, without the DOM: which problems sit on which line of the text
// (a line past the end is the last one), the caret offset of a line and column, and the line a
// caret is on.
import type { PolicySourceError } from '../../../src/control/policy-types.js';

export function lineCount(text: string): number {
  let lines = 1;
  for (let i = text.indexOf('\n'); i !== -1; i = text.indexOf('\n', i + 1)) lines++;
  return lines;
}

const clamp = (value: number, min: number, max: number) => Math.min(Math.max(value, min), max);

/** Problems by line (1-based), each on a line that exists, in the order the server gave them. */
export function problemsByLine(text: string, problems: readonly PolicySourceError[]): Map<number, PolicySourceError[]> {
  const last = lineCount(text);
  const byLine = new Map<number, PolicySourceError[]>();
  for (const problem of problems) {
    const line = clamp(problem.line, 1, last);
    const list = byLine.get(line);
    if (list) list.push(problem);
    else byLine.set(line, [problem]);
  }
  return byLine;
}

/** The caret offset of a 1-based line and column, kept inside that line. */
export function offsetOf(text: string, line: number, column = 1): number {
  let start = 0;
  for (let n = 1; n < line; n++) {
    const next = text.indexOf('\n', start);
    if (next === -1) break;
    start = next + 1;
  }
  const end = text.indexOf('\n', start);
  const lineEnd = end === -1 ? text.length : end;
  return clamp(start + column - 1, start, lineEnd);
}

/** The 1-based line a caret offset is on. */
export function lineAt(text: string, offset: number): number {
  return lineCount(text.slice(0, clamp(offset, 0, text.length)));
}

/** How a problem reads in the list under the editor. */
export function problemText(problem: PolicySourceError): string {
  return `Line ${problem.line}, column ${problem.column}: ${problem.path ? `${problem.path}: ` : ''}${problem.message}`;
}
