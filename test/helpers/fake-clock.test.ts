// The shared fake clock: advance() fires what falls due, in due order, intervals repeat, cleared timers never fire.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { FakeClock } from './fake-clock.js';

test('fake clock: advance() fires due timers in order, those they set too, and stops at the target', () => {
  const clock = new FakeClock(1_000);
  const fired: string[] = [];
  clock.setTimeout(() => fired.push(`b@${clock.now()}`), 20);
  clock.setTimeout(() => {
    fired.push(`a@${clock.now()}`);
    clock.setTimeout(() => fired.push(`c@${clock.now()}`), 5);
  }, 10);
  clock.setTimeout(() => fired.push('late'), 31);
  assert.equal(clock.advance(30), 3);
  assert.deepEqual(fired, ['a@1010', 'c@1015', 'b@1020']);
  assert.equal(clock.now(), 1_030);
  assert.deepEqual(clock.pending(), [1]);
});

test('fake clock: intervals repeat until cleared; cleared timeouts never fire', () => {
  const clock = new FakeClock();
  let ticks = 0;
  const interval = clock.setInterval(() => ticks++, 100);
  const timeout = clock.setTimeout(() => assert.fail('cleared'), 50);
  clock.clearTimeout(timeout);
  clock.advance(350);
  assert.equal(ticks, 3);
  clock.clearInterval(interval);
  clock.advance(1_000);
  assert.equal(ticks, 3);
  assert.deepEqual(clock.pending(), []);
  assert.equal(clock.created, 2);
});

test('fake clock: fireNext() jumps to the soonest timer; time never goes back', () => {
  const clock = new FakeClock();
  assert.equal(clock.fireNext(), undefined);
  clock.setTimeout(() => undefined, 700);
  clock.setTimeout(() => undefined, 300);
  assert.equal(clock.fireNext(), 300);
  assert.equal(clock.fireNext(), 400);
  assert.equal(clock.now(), 700);
  assert.throws(() => clock.advance(-1), RangeError);
});
