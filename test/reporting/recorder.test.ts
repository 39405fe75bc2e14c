// The audit recorder: events stamped and written in order in batches, kept and retried while
// the store fails (nothing lost), and a loud drop only past the bound.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { AuditRecorder } from '../../src/reporting/recorder.js';
import type { NewAuditEvent } from '../../src/reporting/events.js';

function logger() {
  const lines: string[] = [];
  return { lines, warn: (_o: object, msg: string) => void lines.push(`warn ${msg}`), error: (_o: object, msg: string) => void lines.push(`error ${msg}`) };
}

test('records are stamped, written in order, and a failing store keeps them for the next try', async () => {
  const written: NewAuditEvent[] = [];
  let failing = true;
  let woken = 0;
  const log = logger();
  const recorder = new AuditRecorder({
    store: { append: async (events) => (failing ? Promise.reject(new Error('disk full')) : void written.push(...events)) },
    logger: log, onWritten: () => woken++, now: () => new Date('2026-12-01T10:00:00Z'),
  });
  recorder.record({ type: 'connection.open', connectionId: 'c1' });
  recorder.record({ type: 'connection.close', connectionId: 'c1', at: '2026-12-01T09:00:00.000Z' });
  await recorder.flush();
  assert.equal(written.length, 0);
  assert.deepEqual(log.lines, ['warn audit events not written yet; retrying']);
  failing = false;
  recorder.record({ type: 'http.request' });
  await recorder.flush();
  assert.deepEqual(written.map((e) => [e.type, e.at]), [
    ['connection.open', '2026-12-01T10:00:00.000Z'], ['connection.close', '2026-12-01T09:00:00.000Z'], ['http.request', '2026-12-01T10:00:00.000Z'],
  ]);
  assert.equal(woken, 1);
});

test('more than one batch is written in order; past the bound the oldest go, and the log says how many', async () => {
  const batches: number[] = [];
  const log = logger();
  const recorder = new AuditRecorder({ store: { append: async (events) => void batches.push(events.length) }, logger: log, maxBuffered: 1_200 });
  for (let i = 0; i < 1_250; i++) recorder.record({ type: 'http.request', details: { i } });
  assert.deepEqual(log.lines, Array(50).fill('error audit buffer full while the store is failing: oldest events dropped'));
  await recorder.flush();
  assert.deepEqual(batches, [500, 500, 200]);
});
