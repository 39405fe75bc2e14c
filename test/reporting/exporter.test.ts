// The resumable export loop under a fake clock: batches and cursor, notify() and polling,
// capped backoff while the receiver is down, restart from the stored cursor, bounded stop();
// then end to end with a real webhook receiver that is down for a while, and a syslog receiver.
import assert from 'node:assert/strict';
import net from 'node:net';
import { after, test } from 'node:test';
import { isPosternError } from '../../src/errors.js';
import type { AuditEvent } from '../../src/reporting/events.js';
import { AuditExporter } from '../../src/reporting/exporter.js';
import type { AuditExporterOptions, AuditSink } from '../../src/reporting/exporter.js';
import { createSyslogSink } from '../../src/reporting/syslog.js';
import { createWebhookSink } from '../../src/reporting/webhook.js';
import { freePort } from '../helpers/util.js';
import { MemoryCursors, MemorySource, recordingLogger } from './helpers/audit.js';
import { FakeClock } from '../helpers/fake-clock.js';
import { WebhookReceiver } from './helpers/receiver.js';

const cleanups: Array<() => Promise<void>> = [];
after(async () => {
  for (const cleanup of cleanups.reverse()) await cleanup();
});

/** Collects what it is sent; the attempts numbered in `failOn` (from 1) fail. */
class MemorySink implements AuditSink {
  readonly batches: AuditEvent[][] = [];
  failOn = new Set<number>();
  attempts = 0;
  async send(events: readonly AuditEvent[]): Promise<void> {
    if (this.failOn.has(++this.attempts)) throw new Error('receiver down');
    this.batches.push([...events]);
  }
  ids(): number[] {
    return this.batches.flat().map((e) => e.id);
  }
}

const range = (from: number, to: number): number[] => Array.from({ length: to - from + 1 }, (_, i) => from + i);

/** Lets in-memory promises run; bounded so a wrong expectation fails instead of hanging. */
async function until(condition: () => boolean, what: string): Promise<void> {
  for (let i = 0; i < 1_000; i++) {
    if (condition()) return;
    await new Promise((resolve) => setImmediate(resolve));
  }
  assert.fail(`never happened: ${what}`);
}

function setup(overrides: Partial<AuditExporterOptions> = {}) {
  const clock = new FakeClock();
  const source = new MemorySource();
  const cursors = new MemoryCursors();
  const sink = new MemorySink();
  const logger = recordingLogger();
  const exporter = new AuditExporter({
    name: 'siem', source, cursors, sink, logger, clock, random: () => 1, batchSize: 100, pollIntervalMs: 5_000, ...overrides,
  });
  cleanups.push(() => exporter.stop());
  return { clock, source, cursors, sink, logger, exporter };
}

test('exporter: sends batches in order and stores the cursor after each', async () => {
  const { source, cursors, sink, exporter, clock } = setup();
  source.append(250);
  exporter.start();
  await until(() => sink.batches.length === 3 && cursors.writes.length === 3, 'three batches');
  assert.deepEqual(sink.batches.map((b) => b.length), [100, 100, 50]);
  assert.deepEqual(sink.ids(), range(1, 250));
  assert.deepEqual(cursors.writes, [100, 200, 250]);
  assert.deepEqual(exporter.status(), { running: true, cursor: 250, failures: 0 });
  await until(() => clock.pending().length === 1, 'the idle poll timer');
  assert.deepEqual(clock.pending(), [5_000]);
  await exporter.stop();
  assert.equal(exporter.status().running, false);
  assert.deepEqual(clock.pending(), [], 'stop clears its timers');
});

test('exporter: notify() wakes it at once; without it, the poll interval finds new events', async () => {
  const { source, sink, exporter, clock } = setup();
  exporter.start();
  await until(() => clock.pending().length === 1, 'idle');
  source.append(3);
  exporter.notify();
  await until(() => sink.ids().length === 3, 'events after notify');
  assert.equal(clock.now(), 0, 'no time had to pass');

  source.append(2);
  await until(() => clock.pending().length === 1, 'idle again');
  assert.equal(clock.fireNext(), 5_000);
  await until(() => sink.ids().length === 5, 'events found by polling');
  assert.deepEqual(sink.ids(), range(1, 5));
});

test('exporter: a notify() during a send is not lost', async () => {
  const delivered = new MemorySink();
  const releases: Array<() => void> = [];
  const slow: AuditSink = {
    send: async (events) => {
      await new Promise<void>((resolve) => releases.push(resolve));
      await delivered.send(events);
    },
  };
  const { source, exporter, clock } = setup({ sink: slow });
  source.append(1);
  exporter.start();
  await until(() => releases.length === 1, 'send in flight');
  source.append(1);
  exporter.notify();
  releases[0]!();
  await until(() => releases.length === 2, 'second send started without a poll');
  releases[1]!();
  await until(() => delivered.ids().length === 2, 'both delivered');
  assert.deepEqual(delivered.ids(), [1, 2]);
  assert.equal(clock.now(), 0);
});

test('exporter: receiver down → capped exponential backoff, then resumes from the last delivered event', async () => {
  const { source, cursors, sink, exporter, clock, logger } = setup({ batchSize: 10 });
  source.append(25);
  // Down at first; then 10 delivered; then down for 9 attempts.
  sink.failOn = new Set([1, ...range(3, 11)]);
  exporter.start();
  await until(() => clock.pending().length === 1, 'first backoff');
  assert.deepEqual(sink.ids(), []);
  assert.deepEqual(cursors.writes, [], 'nothing delivered, nothing stored');
  assert.equal(clock.fireNext(), 500);
  await until(() => sink.ids().length === 10 && clock.pending().length === 1, 'first batch, then down again');
  assert.deepEqual(cursors.writes, [10]);
  const delays: number[] = [];
  for (let i = 0; i < 9; i++) {
    await until(() => clock.pending().length === 1, `backoff ${i}`);
    delays.push(clock.fireNext()!);
  }
  assert.deepEqual(delays, [500, 1_000, 2_000, 4_000, 8_000, 16_000, 30_000, 30_000, 30_000]);
  assert.equal(exporter.status().failures, 9);
  await until(() => sink.ids().length === 25, 'the rest after recovery');
  assert.deepEqual(sink.ids(), range(1, 25), 'every event exactly once, in order');
  assert.deepEqual(cursors.writes, [10, 20, 25]);
  assert.equal(exporter.status().failures, 0);
  assert.equal(logger.lines.filter((l) => l.level === 'warn' && l.msg === 'audit export failed').length, 10);
  assert.ok(logger.lines.some((l) => l.level === 'info' && l.msg === 'audit export resumed'));
});

test('exporter: a failing store is retried too, and a cursor that cannot be stored is logged', async () => {
  const { source, cursors, sink, exporter, clock, logger } = setup();
  source.append(3);
  source.failNext = 2;
  const failingSet = cursors.set.bind(cursors);
  let setFailures = 1;
  cursors.set = async (name, id) => {
    if (setFailures-- > 0) throw new Error('disk full');
    return failingSet(name, id);
  };
  exporter.start();
  for (let i = 0; i < 2; i++) {
    await until(() => clock.pending().length === 1, `store backoff ${i}`);
    clock.fireNext();
  }
  await until(() => sink.ids().length === 3, 'events once the store is back');
  assert.ok(logger.lines.some((l) => l.level === 'error' && l.msg === 'audit export cursor not stored'));
  assert.equal(exporter.status().cursor, 3, 'the batch was delivered: it is not sent again');
  source.append(1);
  exporter.notify();
  await until(() => cursors.values.get('siem') === 4, 'the next cursor stored');
  assert.deepEqual(sink.ids(), range(1, 4));
});

test('exporter: a new exporter resumes from the stored cursor', async () => {
  const first = setup();
  first.source.append(7);
  first.exporter.start();
  await until(() => first.cursors.values.get('siem') === 7, 'first run');
  await first.exporter.stop();
  first.source.append(3);
  const sink = new MemorySink();
  const second = new AuditExporter({
    name: 'siem', source: first.source, cursors: first.cursors, sink, logger: recordingLogger(), clock: first.clock,
  });
  cleanups.push(() => second.stop());
  second.start();
  await until(() => sink.ids().length === 3, 'second run');
  assert.deepEqual(sink.ids(), [8, 9, 10]);
});

test('exporter: stop() waits for the send in flight and stores its cursor; bounded when it hangs', async () => {
  const clock = new FakeClock();
  const source = new MemorySource();
  const cursors = new MemoryCursors();
  let release: () => void = () => undefined;
  const sink: AuditSink = { send: () => new Promise<void>((resolve) => (release = resolve)) };
  const logger = recordingLogger();
  const exporter = new AuditExporter({ name: 'siem', source, cursors, sink, logger, clock, stopTimeoutMs: 2_000 });
  source.append(2);
  exporter.start();
  await until(() => source.queries === 1, 'send in flight');
  let stopped = false;
  const stopping = exporter.stop().then(() => (stopped = true));
  await until(() => clock.pending().length === 1, 'stop timer');
  assert.equal(stopped, false);
  release();
  await stopping;
  assert.deepEqual(cursors.writes, [2]);
  assert.equal(exporter.status().running, false);

  source.append(1);
  exporter.start();
  await until(() => source.queries === 2, 'second send in flight');
  const bounded = exporter.stop();
  await until(() => clock.pending().length === 1, 'stop timer');
  assert.equal(clock.fireNext(), 2_000);
  await bounded;
  assert.ok(logger.lines.some((l) => l.level === 'warn' && l.msg === 'audit exporter stopped with a send still in flight'));
  release();
  await until(() => cursors.writes.length === 2, 'the late send still stores its cursor');
  assert.equal(source.queries, 2, 'and the loop ends');
});

test('exporter: options are validated at construction', () => {
  const base = { name: 'siem', source: new MemorySource(), cursors: new MemoryCursors(), sink: new MemorySink(), logger: recordingLogger() };
  for (const bad of [{ name: ' ' }, { batchSize: 0 }, { batchSize: 1001 }, { batchSize: 1.5 }, { pollIntervalMs: 0 },
    { retry: { baseMs: 0, capMs: 1 } }, { retry: { baseMs: 10, capMs: 5 } }]) {
    assert.throws(() => new AuditExporter({ ...base, ...bad }), (err: unknown) => isPosternError(err, 'config_invalid'), JSON.stringify(bad));
  }
});

/**
 * Drives an exporter doing real I/O under a fake clock: backoff timers are fired as soon as they
 * are armed, and real time passes only for the loopback traffic. Bounded in steps and time.
 */
async function drive(clock: FakeClock, exporter: AuditExporter, done: () => boolean, onStep: () => Promise<void> = async () => undefined): Promise<void> {
  const deadline = Date.now() + 15_000;
  for (let step = 0; step < 3_000 && Date.now() < deadline; step++) {
    if (done()) return;
    await onStep();
    if (exporter.status().failures > 0 && clock.pending().length > 0) clock.fireNext();
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
  assert.fail('the exporter did not finish in time');
}

test('exporter → webhook: a receiver answering 503 for a while gets every event once, in order', async () => {
  const receiver = new WebhookReceiver();
  await receiver.listen();
  cleanups.push(() => receiver.close());
  receiver.status = 503;
  receiver.failuresLeft = 4;
  const { clock, source, cursors, exporter } = setup({
    batchSize: 7,
    sink: createWebhookSink({ url: receiver.url, secret: 'hmac-secret-value', timeoutMs: 5_000 }),
  });
  source.append(30);
  exporter.start();
  await drive(clock, exporter, () => receiver.events.length >= 30 && cursors.values.get('siem') === 30);
  assert.deepEqual(receiver.events.map((e) => e.id), range(1, 30), 'no loss, no duplicate, in order');
  assert.deepEqual(receiver.events, source.events);
  assert.deepEqual(receiver.requests.map((r) => r.status), [503, 503, 503, 503, 200, 200, 200, 200, 200]);
  assert.deepEqual(cursors.writes, [7, 14, 21, 28, 30]);
});

test('exporter → webhook: a receiver whose port is closed, then comes back, gets every event once', async () => {
  const port = await freePort();
  const receiver = new WebhookReceiver();
  cleanups.push(() => receiver.close());
  const { clock, source, cursors, exporter } = setup({
    batchSize: 5,
    sink: createWebhookSink({ url: `http://127.0.0.1:${port}/hooks/audit`, format: 'jsonl', timeoutMs: 5_000 }),
  });
  source.append(12);
  exporter.start();
  let listening = false;
  await drive(clock, exporter, () => receiver.events.length >= 12 && cursors.values.get('siem') === 12, async () => {
    if (!listening && exporter.status().failures >= 3) {
      listening = true;
      await receiver.listen(port);
    }
  });
  assert.ok(listening, 'it was down first');
  assert.deepEqual(cursors.writes, [5, 10, 12]);
  assert.deepEqual(receiver.events.map((e) => e.id), range(1, 12));
  source.append(2);
  exporter.notify();
  await drive(clock, exporter, () => receiver.events.length >= 14);
  assert.deepEqual(receiver.events.map((e) => e.id), range(1, 14));
});

test('exporter → syslog over TCP: every event as one octet-counted frame, in order', async () => {
  const frames: string[] = [];
  const sockets = new Set<net.Socket>();
  const server = net.createServer((socket) => {
    sockets.add(socket);
    let buffer = '';
    socket.setEncoding('utf8');
    socket.on('data', (chunk: string) => {
      buffer += chunk;
      // The test events are ASCII, so characters and octets agree.
      for (let m = /^(\d+) /.exec(buffer); m && buffer.length >= m[0].length + Number(m[1]); m = /^(\d+) /.exec(buffer)) {
        frames.push(buffer.slice(m[0].length, m[0].length + Number(m[1])));
        buffer = buffer.slice(m[0].length + Number(m[1]));
      }
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  cleanups.push(() => new Promise((resolve) => {
    for (const socket of sockets) socket.destroy();
    server.close(() => resolve());
  }));
  const sink = createSyslogSink(`tcp://127.0.0.1:${(server.address() as net.AddressInfo).port}`, { hostname: 'edge-1' });
  cleanups.push(() => sink.close());
  const { clock, source, cursors, exporter } = setup({ batchSize: 4, sink });
  source.append(10);
  exporter.start();
  await drive(clock, exporter, () => frames.length >= 10 && cursors.values.get('siem') === 10);
  assert.deepEqual(frames.map((f) => Number(/ id="(\d+)"/.exec(f)?.[1])), range(1, 10));
  assert.ok(frames.every((f) => f.startsWith('<132>1 ') && f.includes(' edge-1 postern - access.denied [postern@32473 ')));
});
