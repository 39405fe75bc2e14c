// recheckAt: the next instant a time condition of an applicable rule changes, exact across DST.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { compileWhen } from '../../src/policy/criteria/when.js';
import { evaluate } from '../../src/policy/evaluate.js';
import type { WhenCondition } from '../../src/policy/types.js';
import { ctx, setOf } from './helpers.js';

function next(when: WhenCondition, at: string): string | undefined {
  const t = compileWhen(when)!.nextChange!(Date.parse(at));
  return t === undefined ? undefined : new Date(t).toISOString();
}

const office: WhenCondition = { weekdays: ['mon', 'tue', 'wed', 'thu', 'fri'], time: '08:00-18:00', tz: 'Europe/Amsterdam' };

test('office hours: closes at 18:00 local, reopens on the next weekday at 08:00 local', () => {
  assert.equal(next(office, '2025-03-24T10:00:00Z'), '2025-03-24T17:00:00.000Z');
  assert.equal(next(office, '2025-03-24T17:00:00Z'), '2025-03-25T07:00:00.000Z');
  assert.equal(next(office, '2025-03-24T06:00:00Z'), '2025-03-24T07:00:00.000Z');
});

test('across the spring DST change in Amsterdam (Sunday 30 March 2025, 02:00 → 03:00)', () => {
  // Friday 28 March 19:00 local (CET): the next opening is Monday 31 March 08:00 CEST = 06:00Z, not 07:00Z.
  assert.equal(next(office, '2025-03-28T18:00:00Z'), '2025-03-31T06:00:00.000Z');
  // ...and that Monday closes at 18:00 CEST = 16:00Z.
  assert.equal(next(office, '2025-03-31T06:00:00Z'), '2025-03-31T16:00:00.000Z');
});

test('across the autumn DST change (Sunday 26 October 2025, 03:00 → 02:00)', () => {
  assert.equal(next(office, '2025-10-24T17:00:00Z'), '2025-10-27T07:00:00.000Z');
  // a window inside the repeated hour: 02:00-02:30 happens twice that night and matches both times
  const repeated: WhenCondition = { time: '02:00-02:30', tz: 'Europe/Amsterdam' };
  assert.equal(next(repeated, '2025-10-25T23:00:00Z'), '2025-10-26T00:00:00.000Z'); // 02:00 CEST
  assert.equal(next(repeated, '2025-10-26T00:00:00Z'), '2025-10-26T00:30:00.000Z'); // 02:30 CEST
  assert.equal(next(repeated, '2025-10-26T00:30:00Z'), '2025-10-26T01:00:00.000Z'); // clocks back: 02:00 CET again
  assert.equal(next(repeated, '2025-10-26T01:00:00Z'), '2025-10-26T01:30:00.000Z');
  assert.equal(next(repeated, '2025-10-26T01:30:00Z'), '2025-10-27T01:00:00.000Z'); // Monday 02:00 CET
});

test('a window starting in the skipped hour opens when the clock jumps', () => {
  const skipped: WhenCondition = { time: '02:30-04:00', tz: 'Europe/Amsterdam' };
  // 02:30 does not exist on 30 March: at 01:00Z the clock shows 03:00, inside the window.
  assert.equal(next(skipped, '2025-03-29T23:00:00Z'), '2025-03-30T01:00:00.000Z');
  assert.equal(next(skipped, '2025-03-30T01:00:00Z'), '2025-03-30T02:00:00.000Z'); // 04:00 CEST
});

test('wrapping windows and weekdays alone', () => {
  const night: WhenCondition = { time: '22:00-06:00', weekdays: ['fri'] };
  assert.equal(next(night, '2025-03-28T12:00:00Z'), '2025-03-28T22:00:00.000Z');
  assert.equal(next(night, '2025-03-28T23:00:00Z'), '2025-03-29T06:00:00.000Z');
  // Saturday 06:00 onwards: next Friday night
  assert.equal(next(night, '2025-03-29T06:00:00Z'), '2025-04-04T22:00:00.000Z');
  assert.equal(next({ weekdays: ['sat', 'sun'] }, '2025-03-26T12:00:00Z'), '2025-03-29T00:00:00.000Z');
  assert.equal(next({ weekdays: ['sat', 'sun'] }, '2025-03-29T12:00:00Z'), '2025-03-31T00:00:00.000Z');
  assert.equal(next({ weekdays: ['mon', 'tue', 'wed', 'thu', 'fri', 'sat', 'sun'] }, '2025-03-29T12:00:00Z'), undefined);
});

test('after and before', () => {
  const dated: WhenCondition = { after: '2025-06-01T00:00:00Z', before: '2025-07-01T00:00:00Z' };
  assert.equal(next(dated, '2025-05-01T00:00:00Z'), '2025-06-01T00:00:00.000Z');
  assert.equal(next(dated, '2025-06-15T00:00:00Z'), '2025-07-01T00:00:00.000Z');
  assert.equal(next(dated, '2025-07-01T00:00:00Z'), undefined);
  // a window that opens only after `after`: the change is the first opening after it
  const later: WhenCondition = { after: '2025-06-01T12:00:00Z', time: '08:00-09:00' };
  assert.equal(next(later, '2025-05-01T00:00:00Z'), '2025-06-02T08:00:00.000Z');
  // before cuts a window short
  const cut: WhenCondition = { before: '2025-03-24T08:30:00Z', time: '08:00-09:00' };
  assert.equal(next(cut, '2025-03-24T08:10:00Z'), '2025-03-24T08:30:00.000Z');
  assert.equal(next(cut, '2025-03-23T12:00:00Z'), '2025-03-24T08:00:00.000Z');
});

test('the memo answers later instants before the change and recomputes after it', () => {
  const c = compileWhen(office)!;
  const t = (iso: string) => new Date(c.nextChange!(Date.parse(iso))!).toISOString();
  assert.equal(t('2025-03-24T10:00:00Z'), '2025-03-24T17:00:00.000Z');
  assert.equal(t('2025-03-24T16:59:59Z'), '2025-03-24T17:00:00.000Z');
  assert.equal(t('2025-03-24T17:00:00Z'), '2025-03-25T07:00:00.000Z');
  assert.equal(t('2025-03-24T09:00:00Z'), '2025-03-24T17:00:00.000Z'); // back in time: recomputed
});

test('evaluate: recheckAt is the earliest change among the applicable rules, allowed or not', () => {
  const set = setOf(
    { name: 'office', sockets: ['web'], rules: [{ effect: 'allow', when: office }] },
    { name: 'freeze', rules: [{ effect: 'deny', when: { after: '2025-03-24T12:00:00Z', before: '2025-03-24T13:00:00Z' } }] },
    { name: 'elsewhere', sockets: ['other'], rules: [{ effect: 'allow', when: { time: '10:30-11:00' } }] },
  );
  const d = evaluate(ctx({ at: '2025-03-24T10:00:00Z' }), set);
  assert.equal(d.effect, 'allow');
  assert.equal(d.recheckAt?.toISOString(), '2025-03-24T12:00:00.000Z');
  const frozen = evaluate(ctx({ at: '2025-03-24T12:15:00Z' }), set);
  assert.equal(frozen.summary, 'denied by rule freeze#1');
  assert.equal(frozen.recheckAt?.toISOString(), '2025-03-24T13:00:00.000Z');
  assert.equal(evaluate(ctx({ at: '2025-03-24T13:00:00Z' }), set).recheckAt?.toISOString(), '2025-03-24T17:00:00.000Z');
  assert.equal(evaluate(ctx(), setOf({ name: 'always', rules: [{ effect: 'allow' }] })).recheckAt, undefined);
  // a window of an SSH-only rule does not wake an HTTP decision
  const sshWindow = setOf({ name: 'p', rules: [{ effect: 'allow' }, { effect: 'allow', when: { time: '12:00-13:00' }, what: { ssh: {} } }] });
  assert.equal(evaluate(ctx(), sshWindow).recheckAt, undefined);
  assert.equal(evaluate(ctx({ action: { protocol: 'ssh' } }), sshWindow).recheckAt?.toISOString(), '2025-03-24T12:00:00.000Z');
});
