// when: after/before, weekdays and time windows in a time zone, wrap past midnight, DST.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { compileWhen } from '../../../src/policy/criteria/when.js';
import { facts } from '../helpers.js';

const at = (iso: string) => facts({ at: iso });

test('when: an empty block (or a lone tz) constrains nothing', () => {
  assert.equal(compileWhen({}), undefined);
  assert.equal(compileWhen({ tz: 'Europe/Amsterdam' }), undefined);
});

test('when.after / before: at or after `after`, strictly before `before`', () => {
  const c = compileWhen({ after: '2025-06-01T00:00:00Z', before: '2025-07-01T00:00:00Z' })!;
  assert.equal(c.test(at('2025-05-31T23:59:59.999Z')), 'when-after');
  assert.equal(c.test(at('2025-06-01T00:00:00Z')), 'matched');
  assert.equal(c.test(at('2025-06-30T23:59:59.999Z')), 'matched');
  assert.equal(c.test(at('2025-07-01T00:00:00Z')), 'when-before');
  assert.match(c.detail(at('2025-05-01T00:00:00Z'), 'when-after'), /not yet: the rule applies from 2025-06-01T00:00:00.000Z/);
});

test('when.after without an offset is wall-clock time in tz', () => {
  const c = compileWhen({ after: '2025-06-01', tz: 'Europe/Amsterdam' })!;
  assert.equal(c.test(at('2025-05-31T21:59:59Z')), 'when-after');
  assert.equal(c.test(at('2025-05-31T22:00:00Z')), 'matched');
  const withOffset = compileWhen({ after: '2025-06-01T08:00+02:00', tz: 'America/New_York' })!;
  assert.equal(withOffset.test(at('2025-06-01T05:59:00Z')), 'when-after');
  assert.equal(withOffset.test(at('2025-06-01T06:00:00Z')), 'matched');
});

test('when.weekdays: the weekday in tz, not in UTC', () => {
  // Monday 23:30 UTC is Tuesday 00:30 in Amsterdam (UTC+1 in March).
  const moment = at('2025-03-24T23:30:00Z');
  assert.equal(compileWhen({ weekdays: ['mon'] })!.test(moment), 'matched');
  assert.equal(compileWhen({ weekdays: ['mon'], tz: 'Europe/Amsterdam' })!.test(moment), 'when-weekday');
  assert.equal(compileWhen({ weekdays: ['tue'], tz: 'Europe/Amsterdam' })!.test(moment), 'matched');
  assert.equal(compileWhen({ weekdays: ['sat', 'sun'] })!.detail(moment, 'when-weekday'), 'weekday mon is not one of sat, sun (UTC)');
});

test('when.time: start inclusive, end exclusive, in tz, on both sides of a DST change', () => {
  const c = compileWhen({ time: '08:00-18:00', tz: 'Europe/Amsterdam' })!;
  // Monday 24 March: CET, UTC+1.
  assert.equal(c.test(at('2025-03-24T06:59:59Z')), 'when-time');
  assert.equal(c.test(at('2025-03-24T07:00:00Z')), 'matched');
  assert.equal(c.test(at('2025-03-24T16:59:59Z')), 'matched');
  assert.equal(c.test(at('2025-03-24T17:00:00Z')), 'when-time');
  // Monday 31 March: CEST, UTC+2 (clocks went forward on Sunday 30 March).
  assert.equal(c.test(at('2025-03-31T05:59:59Z')), 'when-time');
  assert.equal(c.test(at('2025-03-31T06:00:00Z')), 'matched');
  assert.equal(c.test(at('2025-03-31T15:59:59Z')), 'matched');
  assert.equal(c.test(at('2025-03-31T16:00:00Z')), 'when-time');
  assert.equal(c.detail(at('2025-03-31T16:05:00Z'), 'when-time'), 'local time 18:05 is outside 08:00-18:00 (Europe/Amsterdam)');
});

test('when.time: an end before the start wraps past midnight; the weekday is the window\'s start day', () => {
  const c = compileWhen({ time: '22:00-06:00', weekdays: ['fri'] })!;
  assert.equal(c.test(at('2025-03-28T22:00:00Z')), 'matched'); // Friday night
  assert.equal(c.test(at('2025-03-29T03:00:00Z')), 'matched'); // Saturday early: Friday's window
  assert.equal(c.test(at('2025-03-29T05:59:59Z')), 'matched');
  assert.equal(c.test(at('2025-03-29T06:00:00Z')), 'when-weekday'); // window over, and it is Saturday
  assert.equal(c.test(at('2025-03-28T03:00:00Z')), 'when-weekday'); // Friday early: Thursday's window
  assert.equal(c.test(at('2025-03-28T12:00:00Z')), 'when-time');
  assert.equal(c.test(at('2025-03-29T22:30:00Z')), 'when-weekday');
  assert.match(c.detail(at('2025-03-28T03:00:00Z'), 'when-weekday'), /^weekday thu \(the window opened the day before\)/);
});

test('when.time: 24:00 as the end means midnight', () => {
  const c = compileWhen({ time: '18:00-24:00' })!;
  assert.equal(c.test(at('2025-03-24T23:59:59Z')), 'matched');
  assert.equal(c.test(at('2025-03-25T00:00:00Z')), 'when-time');
  assert.equal(c.test(at('2025-03-24T17:59:00Z')), 'when-time');
});

test('when: values that do not compile throw with their path', () => {
  assert.throws(() => compileWhen({ time: '8-18' }), /^Error: when\.time: expected HH:MM-HH:MM, got "8-18"$/);
  assert.throws(() => compileWhen({ tz: 'Mars/Olympus', weekdays: ['mon'] }), /^Error: when\.tz: "Mars\/Olympus" is not an IANA time zone$/);
  assert.throws(() => compileWhen({ after: 'yesterday' }), /^Error: when\.after:/);
  assert.throws(() => compileWhen({ weekdays: ['mon', 'monday' as 'mon'] }), /^Error: when\.weekdays\[1\]: "monday" is not a weekday/);
});
