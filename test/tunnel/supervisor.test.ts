// TunnelSupervisor under a fake clock: slots, redial after backoff, growth and cap, welcome
// resetting the attempt counter, drain-requested replacement, drain()/stop().
import assert from 'node:assert/strict';
import { EventEmitter } from 'node:events';
import { test } from 'node:test';
import { pino } from 'pino';
import { backoffDelay } from '../../src/backoff.js';
import { TunnelSupervisor, defaultBackoff } from '../../src/tunnel/supervisor.js';
import type { TunnelLink } from '../../src/tunnel/supervisor.js';
import { FakeClock } from '../helpers/fake-clock.js';

const logger = pino({ level: 'silent' });
const RANDOM = 0.5;
const delayFor = (attempt: number): number => backoffDelay(attempt, defaultBackoff, () => RANDOM);

/** Fires the only pending timer (asserting there is exactly one) and returns its delay. */
function fireOnly(clock: FakeClock): number {
  assert.equal(clock.pending().length, 1, `expected one pending timer, got ${clock.pending().length}`);
  return clock.fireNext()!;
}

class FakeLink extends EventEmitter implements TunnelLink {
  drained: number[] = [];
  destroyed = false;
  async drain(graceMs: number): Promise<void> {
    this.drained.push(graceMs);
  }
  destroy(): void {
    this.destroyed = true;
  }
}

/** connect() answers from a script: a FakeLink (resolve) or an Error (reject). */
function harness(connections: number, answers: (slot: number, call: number) => FakeLink | Error = () => new FakeLink()) {
  const clock = new FakeClock();
  const dials: { slot: number; result: FakeLink | Error }[] = [];
  const events: string[] = [];
  const supervisor = new TunnelSupervisor({
    connections,
    logger,
    clock,
    random: () => RANDOM,
    connect: async (slot) => {
      const result = answers(slot, dials.length);
      dials.push({ slot, result });
      if (result instanceof Error) throw result;
      return result;
    },
  });
  supervisor.on('connected', (slot: number) => events.push(`connected:${slot}`));
  supervisor.on('disconnected', (slot: number) => events.push(`disconnected:${slot}`));
  supervisor.on('reconnected', (slot: number, ms: number) => events.push(`reconnected:${slot}:${ms}`));
  supervisor.on('retry', (slot: number, ms: number) => events.push(`retry:${slot}:${ms}`));
  const links = () => dials.map((d) => d.result).filter((r): r is FakeLink => r instanceof FakeLink);
  return { clock, dials, events, supervisor, links };
}

const settle = () => new Promise<void>((resolve) => setImmediate(resolve));

test('supervisor: rejects a non-positive or fractional connection count', () => {
  for (const connections of [0, -1, 1.5, Number.NaN]) {
    assert.throws(() => new TunnelSupervisor({ connections, logger, connect: async () => new FakeLink() }), RangeError);
  }
});

test('supervisor: opens N connections, counts them connected on welcome', async () => {
  const { supervisor, dials, links, events, clock } = harness(3);
  assert.deepEqual(supervisor.status().map((s) => s.state), ['waiting', 'waiting', 'waiting']);
  supervisor.start();
  await settle();
  assert.deepEqual(dials.map((d) => d.slot), [0, 1, 2]);
  assert.deepEqual(supervisor.status().map((s) => s.state), ['connecting', 'connecting', 'connecting']);
  assert.equal(supervisor.connectedCount, 0);
  links()[0]!.emit('welcome', {});
  links()[2]!.emit('welcome', {});
  assert.equal(supervisor.connectedCount, 2);
  assert.deepEqual(supervisor.status(), [
    { state: 'connected', attempt: 0 }, { state: 'connecting', attempt: 0 }, { state: 'connected', attempt: 0 },
  ]);
  assert.deepEqual(events, ['connected:0', 'connected:2']);
  assert.equal(clock.created, 0);
  supervisor.stop();
});

test('supervisor: a closed link is redialed after the backoff delay, not before', async () => {
  const { supervisor, dials, links, events, clock } = harness(1);
  supervisor.start();
  await settle();
  links()[0]!.emit('welcome', {});
  links()[0]!.emit('close');
  assert.deepEqual(events, ['connected:0', 'disconnected:0', `retry:0:${delayFor(0)}`]);
  assert.equal(supervisor.status()[0]!.state, 'waiting');
  assert.equal(supervisor.connectedCount, 0);
  await settle();
  assert.equal(dials.length, 1, 'no redial before the timer fires');
  assert.equal(fireOnly(clock), delayFor(0));
  await settle();
  assert.equal(dials.length, 2);
  assert.equal(supervisor.status()[0]!.state, 'connecting');
  links()[1]!.emit('welcome', {});
  assert.equal(supervisor.connectedCount, 1);
  // A late event from the replaced link changes nothing.
  links()[0]!.emit('close');
  assert.equal(clock.pending().length, 0);
  supervisor.stop();
});

test('supervisor: a reconnect says how long the slot was down (failed redials included); the first connect does not', async () => {
  const { supervisor, links, events, clock } = harness(1, (_slot, call) => (call === 1 ? new Error('refused') : new FakeLink()));
  supervisor.start();
  await settle();
  links()[0]!.emit('welcome', {});
  links()[0]!.emit('close');
  fireOnly(clock);
  await settle();
  fireOnly(clock);
  await settle();
  links()[1]!.emit('welcome', {});
  assert.deepEqual(events.filter((e) => e.startsWith('reconnected') || e.startsWith('connected')), ['connected:0', 'connected:0', `reconnected:0:${delayFor(0) + delayFor(1)}`]);
  supervisor.stop();
});

test('supervisor: failed dials retry with growing delays capped at 60 s', async () => {
  const { supervisor, dials, clock } = harness(1, () => new Error('ECONNREFUSED'));
  supervisor.start();
  const delays: number[] = [];
  for (let i = 0; i < 12; i++) {
    await settle();
    assert.equal(dials.length, i + 1);
    assert.equal(supervisor.status()[0]!.state, 'waiting');
    delays.push(fireOnly(clock));
  }
  assert.deepEqual(delays, [375, 750, 1_500, 3_000, 6_000, 12_000, 24_000, 45_000, 45_000, 45_000, 45_000, 45_000]);
  for (let i = 1; i < delays.length; i++) assert.ok(delays[i]! >= delays[i - 1]!);
  assert.ok(delays.every((d) => d <= 60_000));
  await settle();
  assert.deepEqual(supervisor.status()[0], { state: 'waiting', attempt: 13, lastError: 'ECONNREFUSED' });
  supervisor.stop();
});

test('supervisor: welcome resets the attempt counter and the last error', async () => {
  const { supervisor, links, clock } = harness(1, (_slot, call) => (call < 3 ? new Error(`refused ${call}`) : new FakeLink()));
  supervisor.start();
  for (let i = 0; i < 3; i++) {
    await settle();
    assert.equal(fireOnly(clock), delayFor(i));
  }
  await settle();
  assert.deepEqual(supervisor.status()[0], { state: 'connecting', attempt: 3, lastError: 'refused 2' });
  links()[0]!.emit('welcome', {});
  assert.deepEqual(supervisor.status()[0], { state: 'connected', attempt: 0 });
  links()[0]!.emit('close');
  assert.equal(clock.pending()[0], delayFor(0), 'after a welcome the backoff starts over');
  supervisor.stop();
});

test('supervisor: a link closing before welcome keeps growing the backoff', async () => {
  const { supervisor, links, clock } = harness(1);
  supervisor.start();
  const delays: number[] = [];
  for (let i = 0; i < 4; i++) {
    await settle();
    links()[i]!.emit('close');
    delays.push(fireOnly(clock));
  }
  assert.deepEqual(delays, [delayFor(0), delayFor(1), delayFor(2), delayFor(3)]);
  supervisor.stop();
});

test('supervisor: drain-requested dials a replacement and lets the old link drain', async () => {
  const { supervisor, dials, links, events, clock } = harness(2);
  supervisor.start();
  await settle();
  const [first, second] = links();
  first!.emit('welcome', {});
  second!.emit('welcome', {});
  first!.emit('drain-requested');
  assert.deepEqual(first!.drained, [30_000]);
  assert.equal(first!.destroyed, false);
  assert.equal(supervisor.status()[0]!.state, 'waiting');
  assert.equal(supervisor.connectedCount, 1);
  assert.equal(fireOnly(clock), delayFor(0));
  await settle();
  assert.deepEqual(dials.map((d) => d.slot), [0, 1, 0]);
  // The old link finishing later does not trigger another redial or a disconnected event.
  first!.emit('close');
  assert.equal(clock.pending().length, 0);
  assert.ok(!events.includes('disconnected:0'));
  links()[2]!.emit('welcome', {});
  assert.equal(supervisor.connectedCount, 2);
  supervisor.stop();
});

test('supervisor: drain() clears timers, drains links and stops redialing', async () => {
  const { supervisor, dials, links, clock } = harness(3, (slot) => (slot === 2 ? new Error('down') : new FakeLink()));
  supervisor.start();
  await settle();
  links()[0]!.emit('welcome', {});
  assert.equal(clock.pending().length, 1, 'slot 2 waits to retry');
  const timer = clock.timers()[0]!;
  await supervisor.drain(5_000);
  assert.equal(timer.cleared, true);
  assert.deepEqual(links().map((l) => l.drained), [[5_000], [5_000]]);
  assert.deepEqual(supervisor.status().map((s) => s.state), ['stopped', 'stopped', 'stopped']);
  assert.equal(supervisor.connectedCount, 0);
  for (const link of links()) link.emit('close');
  timer.fn(); // even a timer that slipped through must not dial
  await settle();
  assert.equal(dials.length, 3);
  assert.equal(clock.pending().length, 0);
});

test('supervisor: stop() destroys links, clears timers and stops redialing', async () => {
  const { supervisor, dials, links, clock } = harness(2, (slot) => (slot === 1 ? new Error('down') : new FakeLink()));
  supervisor.start();
  await settle();
  const timer = clock.timers()[0]!;
  supervisor.stop();
  assert.equal(timer.cleared, true);
  assert.equal(links()[0]!.destroyed, true);
  assert.deepEqual(supervisor.status().map((s) => s.state), ['stopped', 'stopped']);
  links()[0]!.emit('close');
  await settle();
  assert.equal(clock.pending().length, 0);
  assert.equal(dials.length, 2);
});

test('supervisor: a dial that completes after stop() is destroyed, one that fails is not retried', async () => {
  const clock = new FakeClock();
  const pending: { resolve: (link: FakeLink) => void; reject: (err: Error) => void }[] = [];
  const supervisor = new TunnelSupervisor({
    connections: 2, logger, clock, random: () => RANDOM,
    connect: () => new Promise<TunnelLink>((resolve, reject) => pending.push({ resolve, reject })),
  });
  supervisor.start();
  assert.equal(pending.length, 2);
  supervisor.stop();
  const late = new FakeLink();
  pending[0]!.resolve(late);
  pending[1]!.reject(new Error('refused'));
  await settle();
  assert.equal(late.destroyed, true);
  assert.equal(clock.created, 0);
  assert.deepEqual(supervisor.status().map((s) => s.state), ['stopped', 'stopped']);
});
