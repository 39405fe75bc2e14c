// Store suite cases for managed SSH sockets: the `ssh` type, input recording, and the upstream
// host key pinned at first use — kept across other patches, cleared on request, checked on the
// way in, and carried by the snapshot to every node through the change feed.

import assert from 'node:assert/strict';
import { ChangeFeed, SnapshotCache, loadSnapshot } from '../../src/store/index.js';
import type { Store } from '../../src/store/index.js';
import { FakeClock } from '../helpers/fake-clock.js';
import { MemoryLogger, rejectsWith, within } from './helpers.js';
import type { StoreCase } from './helpers.js';

const ED25519 = 'ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAII+qq1xzldjQGwImdjM9bRTyOahKOm4fMeXHxLPb0kTT';
const ECDSA = 'ecdsa-sha2-nistp256 AAAAE2VjZHNhLXNoYTItbmlzdHAyNTYAAAAIbmlzdHAyNTYAAABBBPDPwJOmr023tPfAS6ypbbtpLVtLaPmdddxqjiHovlKiAH0dAue8RMiLYcDCdJybKcgl6WYoG6ouVGzceO58PUI=';

/** Follows `reader` through a feed of its own until it has seen `writer`'s latest revision. */
async function snapshotAfter(reader: Store, writer: Store) {
  const pollMs = 50;
  const clock = new FakeClock();
  const feed = new ChangeFeed(reader, { pollIntervalMs: pollMs, clock, logger: new MemoryLogger() });
  const cache = new SnapshotCache(reader, feed, { clock: new FakeClock(), logger: new MemoryLogger() });
  await feed.start();
  await cache.start();
  try {
    const done = cache.waitForRevision(await writer.currentRevision(), 5000);
    clock.advance(pollMs);
    return await within(done, 'snapshot with the pin');
  } finally {
    cache.stop();
    await feed.stop();
  }
}

export const sshSocketCases: Record<string, StoreCase> = {
  'ssh sockets: type ssh, recordInput off and no pin by default; both kept as created': async ({ store }) => {
    const plain = await store.sockets.create({ name: 'prod', type: 'ssh', upstream: 'tcp://127.0.0.1:22' });
    assert.equal(plain.type, 'ssh');
    assert.equal(plain.recordInput, false);
    assert.equal(plain.upstreamHostKey, null);
    assert.deepEqual(await store.sockets.get('prod'), plain);
    const full = await store.sockets.create({ name: 'audited', type: 'ssh', recordInput: true, upstreamHostKey: ECDSA });
    assert.deepEqual([full.recordInput, full.upstreamHostKey], [true, ECDSA]);
    assert.deepEqual(await store.sockets.get('audited'), full);
    const web = await store.sockets.create({ name: 'web', type: 'http' });
    assert.deepEqual([web.recordInput, web.upstreamHostKey], [false, null], 'other types have the fields too');
  },

  'ssh sockets: a pin survives other patches, is cleared by null, and each patch records one change': async ({ store }) => {
    await store.sockets.create({ name: 'prod', type: 'ssh' });
    const before = await store.currentRevision();
    const pinned = await store.sockets.update('prod', { upstreamHostKey: ED25519 });
    assert.equal(pinned.upstreamHostKey, ED25519);
    const recording = await store.sockets.update('prod', { recordInput: true, description: 'bastion' });
    assert.deepEqual([recording.recordInput, recording.upstreamHostKey], [true, ED25519], 'other patches keep the pin');
    const quiet = await store.sockets.update('prod', { recordInput: false });
    assert.deepEqual([quiet.recordInput, quiet.upstreamHostKey], [false, ED25519]);
    const forgotten = await store.sockets.update('prod', { upstreamHostKey: null });
    assert.deepEqual([forgotten.recordInput, forgotten.upstreamHostKey, forgotten.description], [false, null, 'bastion']);
    assert.deepEqual(await store.sockets.get('prod'), forgotten);
    const changes = await store.changesSince(before);
    assert.deepEqual(changes.map((c) => [c.entity, c.op]), Array.from({ length: 4 }, () => ['socket', 'update']));
  },

  'ssh sockets: malformed host keys and non-boolean recordInput are bad_request and change nothing': async ({ store }) => {
    await store.sockets.create({ name: 'prod', type: 'ssh', upstreamHostKey: ED25519 });
    const before = await store.currentRevision();
    const blob = ED25519.split(' ')[1]!;
    for (const key of [
      `${ED25519} comment`, // a comment is not part of the pin
      `ssh-rsa ${blob}`, // the blob names another type
      'ssh-ed25519', 'ssh-ed25519 ', ` ${ED25519}`, 'ssh-ed25519 !!!!', 'ssh-ed25519 AAAA', '', `ssh-ed25519 ${'A'.repeat(20_000)}`,
      42 as unknown as string,
    ]) {
      await rejectsWith(store.sockets.update('prod', { upstreamHostKey: key }), 'bad_request', /upstreamHostKey/);
      await rejectsWith(store.sockets.create({ name: 'other', type: 'ssh', upstreamHostKey: key }), 'bad_request', /upstreamHostKey/);
    }
    await rejectsWith(store.sockets.update('prod', { recordInput: 'yes' as unknown as boolean }), 'bad_request', /recordInput/);
    await rejectsWith(store.sockets.create({ name: 'other', type: 'sshd' as 'ssh' }), 'bad_request', /http, https, tls, ssh/);
    assert.equal(await store.currentRevision(), before);
    assert.equal((await store.sockets.get('prod'))?.upstreamHostKey, ED25519);
    assert.equal(await store.sockets.get('other'), undefined);
  },

  'ssh sockets: a pin made on one node reaches the snapshot of another through the feed': async ({ store, openPeer }) => {
    await store.sockets.create({ name: 'prod', type: 'ssh', recordInput: true });
    const initial = await loadSnapshot(store);
    assert.equal(initial.sockets.get('prod')?.upstreamHostKey, null);
    // Without a second node (SQLite :memory:), the one store is both writer and reader.
    const edge = openPeer === undefined ? store : await openPeer();
    await edge.sockets.update('prod', { upstreamHostKey: ED25519 });
    const seen = await snapshotAfter(store, edge);
    const socket = seen.sockets.get('prod');
    assert.deepEqual([socket?.upstreamHostKey, socket?.recordInput], [ED25519, true]);
    assert.ok(Object.isFrozen(socket));
    assert.equal(initial.sockets.get('prod')?.upstreamHostKey, null, 'an older snapshot stays as it was');
  },
};
