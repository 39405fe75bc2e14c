// asciicast v2, the pure parts: header and event lines as asciinema reads them, bounded slices,
// lines read back (garbage refused), replay timing with --speed and --idle-limit, and search.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { castEventLine, castHeaderLine, eventTime, parseEventLine, replayDelayMs, replaySchedule, resizeData, slices } from '../../src/reporting/asciicast.js';
import { CastSearch, visibleText } from '../../src/reporting/cast-search.js';

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

test('search: typed keys one per event, across escapes and case, gives the moment the match began', () => {
  const search = new CastSearch('RM -rf');
  const keys = 'echo; rm -rf /tmp/x\r';
  let found;
  for (const [i, key] of [...keys].entries()) {
    found ??= search.feed({ time: 1 + i / 10, code: 'i', data: key });
  }
  assert.equal(found?.stream, 'input');
  assert.equal(found?.time, 1.6, 'when the "r" of rm was typed');
  assert.match(found!.excerpt, /echo; rm -rf/);
});

test('search: output with colour codes in the middle of the text; input and output never mix; no match is undefined', () => {
  const output = new CastSearch('drop table');
  assert.equal(output.feed({ time: 0.2, code: 'o', data: 'psql> \u001b[1mDROP\u001b[0m TA' }), undefined);
  assert.equal(output.feed({ time: 0.3, code: 'i', data: 'BLE' }), undefined, 'input does not continue output');
  assert.equal(output.feed({ time: 0.4, code: 'r', data: '80x24' }), undefined);
  assert.deepEqual(output.feed({ time: 0.5, code: 'o', data: 'BLE users;\r\n' }), { time: 0.2, stream: 'output', excerpt: 'psql> DROP TABLE users;' });
  const none = new CastSearch('secret');
  for (let i = 0; i < 500; i++) assert.equal(none.feed({ time: i, code: 'o', data: 'nothing to see here ' }), undefined);
  assert.equal(visibleText('a\u001b]0;title\u0007b\r\nc\u0008'), 'ab\nc');
});
