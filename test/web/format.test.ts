import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { formatBytes, formatCount, formatDuration, formatRelative, formatTimestamp } from '../../web/src/lib/format.js';

describe('dashboard formatting', () => {
  it('writes sizes in binary units', () => {
    assert.equal(formatBytes(0), '0 B');
    assert.equal(formatBytes(1023), '1023 B');
    assert.equal(formatBytes(1536), '1.5 KiB');
    assert.equal(formatBytes(200 * 1024 * 1024), '200 MiB');
    assert.equal(formatBytes(-1), '–');
    assert.equal(formatBytes(Number.NaN), '–');
  });

  it('writes durations from seconds to days', () => {
    assert.equal(formatDuration(999), '0 s');
    assert.equal(formatDuration(65_000), '1 min 05 s');
    assert.equal(formatDuration((2 * 3600 + 10 * 60) * 1000), '2 h 10 min');
    assert.equal(formatDuration((3 * 24 + 4) * 3600 * 1000), '3 d 4 h');
  });

  it('writes times relative to now, in both directions', () => {
    const now = new Date('2026-12-03T12:00:00Z');
    assert.equal(formatRelative('2026-12-03T11:59:58Z', now), 'just now');
    assert.equal(formatRelative('2026-12-03T11:55:00Z', now), '5 min ago');
    assert.equal(formatRelative('2026-12-03T14:00:00Z', now), 'in 2 h');
    assert.equal(formatRelative('not a time', now), '–');
  });

  it('writes timestamps sortably and counts compactly', () => {
    assert.match(formatTimestamp('2026-12-03T12:00:00Z'), /^\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}$/);
    assert.equal(formatTimestamp('x'), '–');
    assert.equal(formatCount(999), '999');
    assert.equal(formatCount(1500), '1.5k');
    assert.equal(formatCount(25_000), '25k');
    assert.equal(formatCount(3_400_000), '3.4M');
  });
});
