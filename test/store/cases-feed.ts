// Store suite cases for the change feed and the snapshot cache: init first, changes in
// order, local trigger, cross-instance pickup by polling, bounded failure, swap without regression.

import assert from 'node:assert/strict';
import { ChangeFeed, SnapshotCache, createSnapshot } from '../../src/store/index.js';
import type { Snapshot, Store } from '../../src/store/index.js';
import { FakeClock } from '../helpers/fake-clock.js';
import { EventCollector, MemoryLogger, rejectsWith, within } from './helpers.js';
import type { StoreCase } from './helpers.js';

const POLL_MS = 50;

function feedFor(store: Store, extra: { batchSize?: number } = {}) {
  const clock = new FakeClock();
  const logger = new MemoryLogger();
  const feed = new ChangeFeed(store, { pollIntervalMs: POLL_MS, clock, logger, ...extra });
  return { feed, clock, logger };
}

/** A store whose changesSince fails while `failing.on` is set. */
function flaky(store: Store): { store: Store; failing: { on: boolean } } {
  const failing = { on: false };
  const wrapped: Store = {
    dialect: store.dialect,
    sockets: store.sockets,
    connectors: store.connectors,
    joinTokens: store.joinTokens,
    apiTokens: store.apiTokens,
    secrets: store.secrets,
    users: store.users,
    sessions: store.sessions,
    sessionGrants: store.sessionGrants,
    handoffCodes: store.handoffCodes,
    identityProviders: store.identityProviders,
    deviceAuthorizations: store.deviceAuthorizations,
    externalIdentities: store.externalIdentities,
    policies: store.policies,
    audit: store.audit,
    liveConnections: store.liveConnections,
    recordings: store.recordings,
    agents: store.agents,
    migrate: () => store.migrate(),
    currentRevision: () => store.currentRevision(),
    changesSince: (revision, limit) =>
      failing.on ? Promise.reject(new Error('connection lost')) : store.changesSince(revision, limit),
    onLocalChange: (listener) => store.onLocalChange(listener),
    close: () => store.close(),
  };
  return { store: wrapped, failing };
}

export const feedCases: Record<string, StoreCase> = {
  'feed: init first, then local changes at once, in revision order': async ({ store }) => {
    await store.secrets.put('before', 'x');
    const startRev = await store.currentRevision();
    const { feed, clock } = feedFor(store);
    const events = new EventCollector();
    feed.subscribe(events.listener);
    assert.equal(events.events.length, 0, 'nothing before start');
    await feed.start();
    assert.deepEqual(events.events, [{ type: 'init', revision: startRev }]);
    assert.deepEqual(clock.pending(), [POLL_MS], 'a poll is scheduled');

    const s = await store.sockets.create({ name: 'web', type: 'http' });
    await store.sockets.update('web', { description: 'd' });
    const rev = await store.currentRevision();
    await events.untilRevision(rev);
    const changes = events.changes().flatMap((e) => (e.type === 'changes' ? e.changes : []));
    assert.deepEqual(changes.map((c) => [c.entityId, c.op]), [[s.id, 'create'], [s.id, 'update']]);
    const revisions = events.events.map((e) => e.revision);
    assert.deepEqual(revisions, [...revisions].sort((a, b) => a - b));
    assert.equal(feed.revision, rev);

    const late = new EventCollector();
    feed.subscribe(late.listener);
    assert.deepEqual(late.events, [{ type: 'init', revision: rev }]);
    await feed.stop();
    assert.deepEqual(clock.pending(), []);
  },

  'feed: picks up writes from another instance by polling': async ({ store, openPeer }) => {
    if (openPeer === undefined) return;
    const peer = await openPeer();
    const { feed, clock } = feedFor(store);
    const events = new EventCollector();
    feed.subscribe(events.listener);
    await feed.start();
    const s = await peer.sockets.create({ name: 'remote', type: 'tls' });
    const rev = await peer.currentRevision();
    assert.equal(events.changes().length, 0, 'no local trigger for a peer write');
    assert.equal(clock.advance(POLL_MS), 1);
    const event = await events.untilRevision(rev);
    assert.ok(event.type === 'changes' && event.changes.some((c) => c.entityId === s.id));
    await feed.stop();
  },

  'feed: concurrent writers on two instances, no revision is skipped': async ({ store, openPeer }) => {
    const peer = openPeer === undefined ? store : await openPeer();
    const { feed } = feedFor(store, { batchSize: 3 });
    const events = new EventCollector();
    feed.subscribe(events.listener);
    await feed.start();
    const base = feed.revision;
    let writing = true;
    const writers = Promise.all(
      Array.from({ length: 24 }, (_, i) => ((i % 2 === 0 ? store : peer).secrets.put(`w${i}`, String(i)))),
    ).finally(() => {
      writing = false;
    });
    // Poll as fast as possible while the writers race, to catch any out-of-order commit.
    while (writing) await feed.pollNow();
    await writers;
    await feed.pollNow();
    const delivered = events.changes().flatMap((e) => (e.type === 'changes' ? e.changes.map((c) => c.revision) : []));
    assert.deepEqual(delivered, (await store.changesSince(base)).map((c) => c.revision));
    assert.equal(delivered.length, 24);
    await feed.stop();
  },

  'feed: batches larger than batchSize arrive complete and in order': async ({ store }) => {
    const { feed } = feedFor(store, { batchSize: 2 });
    const events = new EventCollector();
    feed.subscribe(events.listener);
    await feed.start();
    const base = feed.revision;
    await Promise.all(Array.from({ length: 7 }, (_, i) => store.secrets.put(`k${i}`, 'v')));
    const rev = await store.currentRevision();
    await events.untilRevision(rev);
    const all = events.changes().flatMap((e) => (e.type === 'changes' ? e.changes : []));
    assert.deepEqual(all.map((c) => c.revision), (await store.changesSince(base)).map((c) => c.revision));
    assert.ok(events.changes().every((e) => e.type === 'changes' && e.changes.length <= 2));
    await feed.stop();
  },

  'feed: a throwing listener is removed, the others keep receiving': async ({ store }) => {
    const { feed, logger } = feedFor(store);
    let bad = 0;
    feed.subscribe(() => {
      bad++;
      throw new Error('boom');
    });
    const good = new EventCollector();
    feed.subscribe(good.listener);
    await feed.start();
    assert.equal(bad, 1, 'the bad listener got init and threw');
    await store.secrets.put('a', '1');
    await good.untilRevision(await store.currentRevision());
    await store.secrets.put('b', '2');
    await good.untilRevision(await store.currentRevision());
    assert.equal(bad, 1, 'never called again');
    assert.ok(logger.lines.some((l) => l.level === 'error' && /unsubscribed/.test(l.msg)));
    await feed.stop();
  },

  'feed: a failed poll is logged and retried on the next tick': async ({ store }) => {
    const { store: wrapped, failing } = flaky(store);
    const { feed, clock, logger } = feedFor(wrapped);
    const events = new EventCollector();
    feed.subscribe(events.listener);
    await feed.start();
    failing.on = true;
    await store.secrets.put('x', '1');
    await feed.pollNow();
    assert.equal(events.changes().length, 0);
    assert.ok(logger.lines.some((l) => /poll failed/.test(l.msg)));
    assert.deepEqual(clock.pending(), [POLL_MS], 'still scheduled after a failure');
    failing.on = false;
    clock.advance(POLL_MS);
    await events.untilRevision(await store.currentRevision());
    assert.ok(logger.lines.some((l) => /recovered/.test(l.msg)));
    await feed.stop();
  },

  'snapshot: loads at start, swaps on change, old snapshots stay unchanged': async ({ store }) => {
    await store.sockets.create({ name: 'one', type: 'http', tags: { env: 'prod' } });
    const conn = await store.connectors.create({ name: 'office' });
    const { feed } = feedFor(store);
    const cache = new SnapshotCache(store, feed, { clock: new FakeClock(), logger: new MemoryLogger() });
    await feed.start();
    const first = await cache.start();
    assert.equal(first.revision, await store.currentRevision());
    assert.deepEqual([...first.sockets.keys()], ['one']);
    assert.equal(first.connectors.get(conn.id)?.name, 'office');
    assert.ok(Object.isFrozen(first.sockets.get('one')));
    assert.ok(Object.isFrozen(first.sockets.get('one')?.tags));

    const updates: Array<[number, number]> = [];
    cache.onUpdate((next, prev) => updates.push([prev.revision, next.revision]));
    await store.sockets.create({ name: 'two', type: 'tls' });
    const rev = await store.currentRevision();
    const next = await cache.waitForRevision(rev);
    assert.equal(cache.current(), next);
    assert.ok(next.sockets.has('two'));
    assert.equal(first.sockets.has('two'), false, 'the old snapshot is untouched');
    assert.deepEqual(updates.at(-1), [first.revision, next.revision]);
    cache.stop();
    await feed.stop();
  },

  'snapshot: never applies an older or equal revision': async ({ store }) => {
    await store.sockets.create({ name: 'keep', type: 'http' });
    const { feed } = feedFor(store);
    const cache = new SnapshotCache(store, feed, { clock: new FakeClock(), logger: new MemoryLogger() });
    const current = await cache.start();
    const older: Snapshot = createSnapshot(current.revision - 1, [], []);
    assert.equal(cache.offer(older), false);
    assert.equal(cache.offer(createSnapshot(current.revision, [], [])), false);
    assert.equal(cache.current(), current);
    const newer = createSnapshot(current.revision + 100, [], []);
    assert.equal(cache.offer(newer), true);
    await cache.refresh(); // a real reload now reads an older revision than `newer`
    assert.equal(cache.current(), newer);
    cache.stop();
  },

  'snapshot: follows another instance through the feed; waits are bounded': async ({ store, openPeer }) => {
    const { feed, clock } = feedFor(store);
    const cacheClock = new FakeClock();
    const cache = new SnapshotCache(store, feed, { clock: cacheClock, logger: new MemoryLogger() });
    await feed.start();
    await cache.start();
    const base = cache.current().revision;

    const waiting = cache.waitForRevision(base + 1_000_000, 10);
    assert.equal(cacheClock.advance(10), 1);
    await rejectsWith(waiting, 'store_unavailable', /did not reach revision/);

    if (openPeer !== undefined) {
      const peer = await openPeer();
      await peer.sockets.create({ name: 'from-peer', type: 'http' });
      const rev = await peer.currentRevision();
      const done = cache.waitForRevision(rev, 5000);
      clock.advance(POLL_MS);
      const snap = await within(done, 'snapshot from peer write');
      assert.ok(snap.sockets.has('from-peer'));
    }
    cache.stop();
    await feed.stop();
  },
};
