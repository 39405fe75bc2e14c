// Time zone arithmetic: offsets, transitions, wall-clock to instant.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { canonicalTimeZone, instantOfLocal, nextTransition, zone } from '../../src/policy/tz.js';

const HOUR = 3_600_000;
const ams = zone('Europe/Amsterdam');

test('offsets in Amsterdam on both sides of the 2025 changes', () => {
  assert.equal(ams.offsetAt(Date.parse('2025-03-30T00:59:59Z')), HOUR);
  assert.equal(ams.offsetAt(Date.parse('2025-03-30T01:00:00Z')), 2 * HOUR);
  assert.equal(ams.offsetAt(Date.parse('2025-10-26T00:59:59Z')), 2 * HOUR);
  assert.equal(ams.offsetAt(Date.parse('2025-10-26T01:00:00Z')), HOUR);
  assert.equal(zone('Asia/Kathmandu').offsetAt(Date.parse('2025-01-01T00:00:00Z')), 5.75 * HOUR);
  assert.equal(zone('UTC').offsetAt(0), 0);
});

test('nextTransition finds the exact instant', () => {
  assert.equal(nextTransition(ams, Date.parse('2025-03-20T00:00:00Z'), Date.parse('2025-04-20T00:00:00Z')), Date.parse('2025-03-30T01:00:00Z'));
  assert.equal(nextTransition(ams, Date.parse('2025-04-01T00:00:00Z'), Date.parse('2025-05-01T00:00:00Z')), undefined);
});

test('wall clock: weekday (0 = Sunday) and minute of day', () => {
  const t = Date.parse('2025-03-30T01:30:00Z'); // Sunday 03:30 CEST
  assert.equal(ams.weekdayAt(t), 0);
  assert.equal(ams.minuteAt(t), 3 * 60 + 30);
  assert.equal(ams.weekdayAt(Date.parse('2025-03-29T22:59:59Z')), 6); // Saturday 23:59 CET
  assert.equal(ams.minuteAt(Date.parse('2025-03-29T22:59:59Z')), 23 * 60 + 59);
  assert.equal(zone('UTC').weekdayAt(Date.parse('1969-12-31T12:00:00Z')), 3);
  assert.equal(zone('America/New_York').weekdayAt(Date.parse('2025-03-24T03:00:00Z')), 0); // Sunday 23:00 EDT
});

test('instantOfLocal: ordinary, repeated (earlier) and skipped (shifted forward) wall-clock times', () => {
  assert.equal(instantOfLocal(ams, Date.UTC(2025, 5, 1, 8)), Date.parse('2025-06-01T06:00:00Z'));
  assert.equal(instantOfLocal(ams, Date.UTC(2025, 9, 26, 2, 30)), Date.parse('2025-10-26T00:30:00Z'));
  assert.equal(instantOfLocal(ams, Date.UTC(2025, 2, 30, 2, 30)), Date.parse('2025-03-30T01:30:00Z'));
});

test('canonicalTimeZone', () => {
  assert.equal(canonicalTimeZone('europe/amsterdam'), 'Europe/Amsterdam');
  assert.equal(canonicalTimeZone('UTC'), 'UTC');
  assert.equal(canonicalTimeZone('Mars/Olympus'), undefined);
  assert.equal(canonicalTimeZone(''), undefined);
});
