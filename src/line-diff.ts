// A line diff of two texts, for `postern policy diff` and the dashboard's policy editor: the
// longest common subsequence of their lines (after trimming the common head and tail, so a
// one-line edit of a long file stays cheap). Pure, so the browser bundles it too.

export interface DiffLine {
  readonly kind: 'same' | 'added' | 'removed';
  readonly text: string;
  /** 1-based line in the old text (same, removed) and the new one (same, added). */
  readonly oldLine?: number;
  readonly newLine?: number;
}

const linesOf = (text: string): string[] => (text === '' ? [] : text.replace(/\n$/, '').split('\n'));

export function diffLines(before: string, after: string): DiffLine[] {
  const a = linesOf(before);
  const b = linesOf(after);
  let head = 0;
  while (head < a.length && head < b.length && a[head] === b[head]) head++;
  let tail = 0;
  while (tail < a.length - head && tail < b.length - head && a[a.length - 1 - tail] === b[b.length - 1 - tail]) tail++;
  const midA = a.slice(head, a.length - tail);
  const midB = b.slice(head, b.length - tail);
  // common[i][j]: length of the LCS of midA[i..] and midB[j..].
  const common: Uint32Array[] = Array.from({ length: midA.length + 1 }, () => new Uint32Array(midB.length + 1));
  for (let i = midA.length - 1; i >= 0; i--) {
    for (let j = midB.length - 1; j >= 0; j--) {
      common[i]![j] = midA[i] === midB[j] ? common[i + 1]![j + 1]! + 1 : Math.max(common[i + 1]![j]!, common[i]![j + 1]!);
    }
  }
  const out: DiffLine[] = [];
  for (let k = 0; k < head; k++) out.push({ kind: 'same', text: a[k]!, oldLine: k + 1, newLine: k + 1 });
  let i = 0;
  let j = 0;
  while (i < midA.length || j < midB.length) {
    if (i < midA.length && j < midB.length && midA[i] === midB[j]) {
      out.push({ kind: 'same', text: midA[i]!, oldLine: head + i + 1, newLine: head + j + 1 });
      i++;
      j++;
    } else if (i < midA.length && (j === midB.length || common[i + 1]![j]! >= common[i]![j + 1]!)) {
      out.push({ kind: 'removed', text: midA[i]!, oldLine: head + i + 1 });
      i++;
    } else {
      out.push({ kind: 'added', text: midB[j]!, newLine: head + j + 1 });
      j++;
    }
  }
  for (let k = tail; k > 0; k--) out.push({ kind: 'same', text: a[a.length - k]!, oldLine: a.length - k + 1, newLine: b.length - k + 1 });
  return out;
}

export function diffStats(lines: readonly DiffLine[]): { added: number; removed: number } {
  let added = 0;
  let removed = 0;
  for (const line of lines) {
    if (line.kind === 'added') added++;
    else if (line.kind === 'removed') removed++;
  }
  return { added, removed };
}

/** Unified-style lines: `- ` removed, `+ ` added, two spaces for a line both have. */
export function unifiedLines(lines: readonly DiffLine[]): string[] {
  return lines.map((line) => `${line.kind === 'added' ? '+' : line.kind === 'removed' ? '-' : ' '} ${line.text}`);
}
