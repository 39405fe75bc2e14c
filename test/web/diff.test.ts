import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { diffLines, diffStats } from '../../src/line-diff.js';

const show = (before: string, after: string) => diffLines(before, after).map((l) => `${l.kind === 'same' ? ' ' : l.kind === 'added' ? '+' : '-'}${l.text}`);

describe('line diff', () => {
  it('marks a changed line as removed then added, with both line numbers kept', () => {
    const lines = diffLines('a\nb\nc\n', 'a\nB\nc\n');
    assert.deepEqual(lines, [
      { kind: 'same', text: 'a', oldLine: 1, newLine: 1 },
      { kind: 'removed', text: 'b', oldLine: 2 },
      { kind: 'added', text: 'B', newLine: 2 },
      { kind: 'same', text: 'c', oldLine: 3, newLine: 3 },
    ]);
    assert.deepEqual(diffStats(lines), { added: 1, removed: 1 });
  });

  it('finds the longest common subsequence between moved and inserted lines', () => {
    assert.deepEqual(show('x\na\nb\ny\n', 'a\nnew\nb\ny\nz'), ['-x', ' a', '+new', ' b', ' y', '+z']);
    assert.deepEqual(show('', 'a\nb'), ['+a', '+b']);
    assert.deepEqual(show('a\nb\n', ''), ['-a', '-b']);
    assert.deepEqual(show('same\n', 'same'), [' same'], 'a final newline is not a line');
  });

  it('numbers lines of the common tail in both texts', () => {
    const tail = diffLines('a\nz\n', 'a\nb\nc\nz\n').at(-1);
    assert.deepEqual(tail, { kind: 'same', text: 'z', oldLine: 2, newLine: 4 });
  });
});
