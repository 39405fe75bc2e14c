// backoffDelay, the one retry delay of Postern: equal-jitter exponential delays, capped,
// deterministic under an injected random; checked with the policies the tunnel and the exporter use.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { backoffDelay } from '../src/backoff.js';
import { defaultRetry } from '../src/reporting/exporter.js';
import { defaultBackoff } from '../src/tunnel/supervisor.js';

const ceilingOf = (attempt: number): number => Math.min(60_000, 500 * 2 ** attempt);

test('backoffDelay: always between half and all of the ceiling', () => {
  for (let attempt = 0; attempt < 40; attempt++) {
    const ceiling = ceilingOf(Math.min(attempt, 30));
    assert.equal(backoffDelay(attempt, defaultBackoff, () => 0), ceiling / 2, `attempt ${attempt} low`);
    assert.equal(backoffDelay(attempt, defaultBackoff, () => 0.999999), Math.round(ceiling / 2 + 0.999999 * (ceiling / 2)));
    for (const r of [0.1, 0.37, 0.5, 0.81]) {
      const delay = backoffDelay(attempt, defaultBackoff, () => r);
      assert.ok(delay >= ceiling / 2 && delay <= ceiling, `attempt ${attempt}, r=${r}: ${delay}`);
    }
  }
});

test('backoffDelay: doubles per attempt from the base', () => {
  const delays = [0, 1, 2, 3, 4].map((attempt) => backoffDelay(attempt, defaultBackoff, () => 0.5));
  assert.deepEqual(delays, [375, 750, 1500, 3000, 6000]);
});

test('backoffDelay: capped at 60 s, also for huge attempt numbers', () => {
  assert.equal(defaultBackoff.capMs, 60_000);
  for (const attempt of [7, 8, 10, 30, 31, 100, 1_000_000]) {
    assert.equal(backoffDelay(attempt, defaultBackoff, () => 1), 60_000, `attempt ${attempt}`);
    assert.equal(backoffDelay(attempt, defaultBackoff, () => 0), 30_000, `attempt ${attempt}`);
  }
  assert.ok(Number.isFinite(backoffDelay(Number.MAX_SAFE_INTEGER, defaultBackoff, Math.random)));
});

test('backoffDelay: a custom policy is honoured', () => {
  const policy = { baseMs: 100, capMs: 1_000 };
  assert.deepEqual([0, 1, 2, 3, 4, 5].map((a) => backoffDelay(a, policy, () => 1)), [100, 200, 400, 800, 1_000, 1_000]);
});

test('backoffDelay: deterministic for a given random source, jittered across sources', () => {
  const seq = (values: number[]) => {
    let i = 0;
    return () => values[i++ % values.length]!;
  };
  const a = [0, 1, 2, 3, 4, 5, 6].map((n) => backoffDelay(n, defaultBackoff, seq([0.2, 0.9, 0.4])));
  const b = [0, 1, 2, 3, 4, 5, 6].map((n) => backoffDelay(n, defaultBackoff, seq([0.2, 0.9, 0.4])));
  assert.deepEqual(a, b);
  assert.notEqual(backoffDelay(5, defaultBackoff, () => 0.1), backoffDelay(5, defaultBackoff, () => 0.9));
  assert.ok(a.every(Number.isInteger));
});

test('backoffDelay: the exporter policy grows from 500 ms to its 30 s cap', () => {
  assert.deepEqual([0, 1, 2, 6, 7, 1_000].map((a) => backoffDelay(a, defaultRetry, () => 0)), [250, 500, 1_000, 15_000, 15_000, 15_000]);
  assert.deepEqual([0, 1, 2, 6, 7, 1_000].map((a) => backoffDelay(a, defaultRetry, () => 1)), [500, 1_000, 2_000, 30_000, 30_000, 30_000]);
});

test('backoffDelay: a random of 1 gives the plain capped doubling (no jitter)', () => {
  const policy = { baseMs: 250, capMs: 10_000 };
  assert.deepEqual([0, 1, 2, 3, 4, 5, 6, 7, 50].map((a) => backoffDelay(a, policy, () => 1)), [250, 500, 1_000, 2_000, 4_000, 8_000, 10_000, 10_000, 10_000]);
});
