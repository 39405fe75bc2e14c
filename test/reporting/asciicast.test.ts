// asciicast v2, the pure parts: header and event lines as asciinema reads them, bounded slices,
// lines read back (garbage refused), and replay timing with --speed and --idle-limit.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { castEventLine, castHeaderLine, eventTime, parseEventLine, replayDelayMs, replaySchedule, resizeData, slices } from '../../src/reporting/asciicast.js';

test('the header carries version 2, size, unix timestamp, title and env.TERM', () => {
  const line = castHeaderLine({ width: 120, height: 40, startedAt: '2026-03-01T09:00:00.900Z', title: 'support@prod', term: 'xterm-256color' });
  assert.ok(line.endsWith('\n'));
  assert.deepEqual(JSON.parse(line), { version: 2, width: 120, height: 40, timestamp: 1772355600, title: 'support@prod', env: { TERM: 'xterm-256color' } });
  assert.deepEqual(JSON.parse(castHeaderLine({ width: 80, height: 24, startedAt: new Date(0), title: '', term: '' })), { version: 2, width: 80, height: 24, timestamp: 0 });
});

test('event lines are JSON arrays with escapes; times are seconds since the start, monotonic, microsecond precision', () => {
  assert.equal(castEventLine(1.25, 'o', '\u001b[1mhi\r\n"'), '[1.25,"o","\\u001b[1mhi\\r\\n\\""]\n');
  assert.equal(eventTime(1000, 3500), 2.5);
  assert.equal(eventTime(1000, 1000.0004), 0);
  assert.equal(eventTime(1000, 1001.2345678), 0.001235);
  assert.equal(eventTime(1000, 900), 0, 'never before the start');
  assert.equal(eventTime(1000, 1500, 0.7), 0.7, 'never before the previous event');
  assert.equal(resizeData(100, 30), '100x30');
});

test('slices keep every byte and bound each piece', () => {
  const data = Buffer.from('abcdefghij');
  assert.deepEqual(slices(data, 20), [data]);
  const parts = slices(data, 4);
  assert.deepEqual(parts.map((p) => p.toString()), ['abcd', 'efgh', 'ij']);
});

test('parseEventLine reads events and refuses the header, garbage and other codes', () => {
  assert.deepEqual(parseEventLine('[0.5,"i","ls\\r"]'), { time: 0.5, code: 'i', data: 'ls\r' });
  for (const line of ['{"version":2}', '', '[', '[1,"x","a"]', '["1","o","a"]', '[1,"o",2]', '[1,"o"]', '[NaN,"o","a"]']) assert.equal(parseEventLine(line), undefined, line);
});

test('replay timing: speed divides every pause, the idle limit caps long ones first', () => {
  assert.equal(replayDelayMs(3, { speed: 1 }), 3000);
  assert.equal(replayDelayMs(3, { speed: 2 }), 1500);
  assert.equal(replayDelayMs(30, { speed: 1, idleLimit: 2 }), 2000);
  assert.equal(replayDelayMs(30, { speed: 2, idleLimit: 2 }), 1000);
  assert.equal(replayDelayMs(0.5, { speed: 1, idleLimit: 2 }), 500);
  assert.deepEqual(replaySchedule([0.5, 1, 61, 61.5], { speed: 1 }), [0.5, 1, 61, 61.5]);
  assert.deepEqual(replaySchedule([0.5, 1, 61, 61.5], { speed: 1, idleLimit: 2 }), [0.5, 1, 3, 3.5]);
  assert.deepEqual(replaySchedule([0.5, 1, 61, 61.5], { speed: 2, idleLimit: 2 }), [0.25, 0.5, 1.5, 1.75]);
  assert.deepEqual(replaySchedule([2, 1, 3], { speed: 1 }), [2, 2, 3], 'an out-of-order time waits nothing');
});
