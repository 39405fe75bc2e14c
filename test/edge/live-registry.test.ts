// The live-connection registry on its own: re-decision after a change, kills by id and by
// user, the recheck timer a time window sets (mocked timers, no waiting), and reporting to the
// store that retries what failed, with each connection's activity folded to one bounded line.
import { mock, test } from 'node:test';
import assert from 'node:assert/strict';
import { LiveRegistry, MAX_ACTIVITY_CHARS, activityLine } from '../../src/edge/live-registry.js';
import type { LiveEntry, LivePersistence, Verdict } from '../../src/edge/live-registry.js';
import type { NewAuditEvent } from '../../src/reporting/events.js';

const quiet = { warn: () => undefined };

function entry(id: string, userId: string, decide: () => Verdict, closed: string[]): LiveEntry {
  return {
    id, protocol: 'tls', socket: 'db', userId, email: `${userId}@corp.example`, sessionId: `ses_${userId}`, clientIp: '10.0.0.1', country: '',
    startedAt: new Date(0), counters: { bytesUp: 3, bytesDown: 4 }, decide, close: () => closed.push(id),
  };
}

function registry(events: NewAuditEvent[], persistence?: LivePersistence): LiveRegistry {
  return new LiveRegistry({ edgeId: 'edge-1', record: (e) => events.push(e), logger: quiet, now: () => new Date(1_000), ...(persistence ? { persistence } : {}) });
}

test('reevaluate closes what no longer passes, with an access.denied event and a close event that carry the reason', () => {
  const events: NewAuditEvent[] = [];
  const closed: string[] = [];
  let allowed = true;
  const live = registry(events);
  live.add(entry('conn_a', 'ana', () => (allowed ? { keep: true } : { keep: false, reason: 'denied by rule corp/x#1', rule: 'corp/x#1' }), closed));
  live.add(entry('conn_b', 'bob', () => ({ keep: true }), closed));
  live.reevaluate();
  assert.deepEqual(closed, []);
  allowed = false;
  live.reevaluate();
  assert.deepEqual(closed, ['conn_a']);
  assert.equal(live.size, 1);
  assert.deepEqual(events.map((e) => [e.type, e.connectionId, e.reason, e.rule]), [
    ['access.denied', 'conn_a', 'denied by rule corp/x#1', 'corp/x#1'],
    ['connection.close', 'conn_a', 'denied by rule corp/x#1', undefined],
  ]);
  assert.deepEqual(events[1]!.details, { protocol: 'tls', bytesUp: 3, bytesDown: 4, durationMs: 1_000 });
  live.closed('conn_a', 'closed');
  assert.equal(events.length, 2, 'a stream reporting its own close later records nothing more');
});

test('kill takes one connection id or every connection of a user', () => {
  const events: NewAuditEvent[] = [];
  const closed: string[] = [];
  const live = registry(events);
  for (const [id, user] of [['conn_1', 'ana'], ['conn_2', 'ana'], ['conn_3', 'bob']] as const) live.add(entry(id, user, () => ({ keep: true }), closed));
  assert.equal(live.kill('conn_3', 'killed by an administrator'), 1);
  assert.equal(live.kill('user:ana', 'killed by an administrator'), 2);
  assert.equal(live.kill('conn_9', 'killed'), 0);
  assert.deepEqual(closed, ['conn_3', 'conn_1', 'conn_2']);
  assert.ok(events.every((e) => e.type === 'connection.close' && e.reason === 'killed by an administrator'));
});

test('a recheck time from the decision decides the connection again then', (t) => {
  mock.timers.enable({ apis: ['setTimeout', 'Date'], now: 0 });
  t.after(() => mock.timers.reset());
  const events: NewAuditEvent[] = [];
  const closed: string[] = [];
  let windowOpen = true;
  const live = new LiveRegistry({ edgeId: 'edge-1', record: (e) => events.push(e), logger: quiet, now: () => new Date(Date.now()) });
  const decide = (): Verdict => (windowOpen ? { keep: true, recheckAt: new Date(Date.now() + 60_000) } : { keep: false, reason: 'outside working hours' });
  live.add(entry('conn_t', 'ana', decide, closed), new Date(30_000));
  mock.timers.tick(29_999);
  assert.deepEqual(closed, []);
  mock.timers.tick(1);
  assert.deepEqual(closed, [], 'still inside the window: re-armed for the next change');
  windowOpen = false;
  mock.timers.tick(60_000);
  assert.deepEqual(closed, ['conn_t']);
  assert.equal(events[0]?.reason, 'outside working hours');
});

test('flush reports live rows and removals to the store, and keeps removals that failed for the next heartbeat', async () => {
  const calls: string[] = [];
  let failing = true;
  const persistence: LivePersistence = {
    upsert: async (rows) => void calls.push(`upsert ${rows.map((r) => `${r.id}@${r.edgeId}`).join(',')}`),
    remove: async (ids) => {
      if (failing && ids.length > 0) throw new Error('store down');
      calls.push(`remove ${ids.join(',')}`);
    },
  };
  const closed: string[] = [];
  const live = registry([], persistence);
  live.add(entry('conn_a', 'ana', () => ({ keep: true }), closed));
  live.add(entry('conn_b', 'bob', () => ({ keep: true }), closed));
  live.closed('conn_a', 'closed');
  await live.flush();
  assert.deepEqual(calls, [], 'nothing written while the removal fails');
  failing = false;
  await live.flush();
  assert.deepEqual(calls, ['remove conn_a', 'upsert conn_b@edge-1']);
  live.stop();
});

test('flush reports each connection\'s activity as one line of at most 200 characters; activityChanged reports it soon, without waiting for the heartbeat', async () => {
  mock.timers.enable({ apis: ['setTimeout', 'setInterval'] });
  try {
    const reported: { id: string; activity: string; activitySince: string | null }[][] = [];
    const persistence: LivePersistence = { upsert: async (rows) => void reported.push(rows.map(({ id, activity, activitySince }) => ({ id, activity, activitySince }))), remove: async () => undefined };
    const live = registry([], persistence);
    let activity = { text: '', since: new Date(5_000) };
    live.add({ ...entry('conn_db', 'ana', () => ({ keep: true }), []), protocol: 'postgres', activity: () => activity });
    live.add(entry('conn_tls', 'bob', () => ({ keep: true }), []));
    await live.flush();
    assert.deepEqual(reported.pop(), [{ id: 'conn_db', activity: '', activitySince: '1970-01-01T00:00:05.000Z' }, { id: 'conn_tls', activity: '', activitySince: null }]);
    activity = { text: 'select\n   pg_sleep(30)', since: new Date(6_000) };
    live.activityChanged('conn_db');
    live.activityChanged('conn_gone');
    mock.timers.tick(200);
    await new Promise((resolve) => setImmediate(resolve));
    assert.deepEqual(reported.pop()?.[0], { id: 'conn_db', activity: 'select pg_sleep(30)', activitySince: '1970-01-01T00:00:06.000Z' });
    live.stop();
  } finally {
    mock.timers.reset();
  }
});

test('activityLine folds whitespace and cuts long statements with an ellipsis', () => {
  assert.equal(activityLine('  select 1,\n\t2  '), 'select 1, 2');
  const long = activityLine(`select '${'x'.repeat(500)}'`);
  assert.equal([...long].length, MAX_ACTIVITY_CHARS);
  assert.ok(long.endsWith('…'));
  assert.equal(activityLine('é'.repeat(MAX_ACTIVITY_CHARS)), 'é'.repeat(MAX_ACTIVITY_CHARS));
});
