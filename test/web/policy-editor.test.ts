import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { lineAt, lineCount, offsetOf, problemText, problemsByLine } from '../../web/src/lib/policy-editor.js';

const TEXT = 'name: p\nrules:\n  - effect: alow\n';
const problem = (line: number, path = 'rules[0].effect') => ({ line, column: 13, path, message: 'expected allow or deny, got "alow"' });

describe('policy editor helpers', () => {
  it('counts lines, a trailing newline opening an empty last one', () => {
    assert.equal(lineCount(''), 1);
    assert.equal(lineCount(TEXT), 4);
  });

  it('groups problems on their lines, a line past the end on the last one', () => {
    const byLine = problemsByLine(TEXT, [problem(3), problem(3, 'rules[0]'), problem(40, '')]);
    assert.deepEqual([...byLine.keys()], [3, 4]);
    assert.equal(byLine.get(3)!.length, 2);
    assert.equal(byLine.get(4)![0]!.path, '');
  });

  it('turns a line and column into a caret offset inside that line, and back', () => {
    assert.equal(offsetOf(TEXT, 3, 13), TEXT.indexOf('alow'));
    assert.equal(offsetOf(TEXT, 1, 99), 'name: p'.length, 'a column past the end stays on its line');
    assert.equal(offsetOf(TEXT, 99), TEXT.length);
    assert.equal(lineAt(TEXT, TEXT.indexOf('alow')), 3);
    assert.equal(lineAt(TEXT, 0), 1);
  });

  it('reads a problem with its position and field', () => {
    assert.equal(problemText(problem(3)), 'Line 3, column 13: rules[0].effect: expected allow or deny, got "alow"');
    assert.equal(problemText({ line: 2, column: 1, path: '', message: 'Map keys must be unique' }), 'Line 2, column 1: Map keys must be unique');
  });
});
