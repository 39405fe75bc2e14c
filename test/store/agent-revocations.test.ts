// RevokedAgents: loaded at start (agents revoked before), then kept current from the change
// feed, on this node and on a second node sharing the SQLite file (its feed polls), within 1 s.
import assert from 'node:assert/strict';
import { after, test } from 'node:test';
import { join } from 'node:path';
import { ChangeFeed, RevokedAgents, openStore, silentLogger } from '../../src/store/index.js';
import type { Store } from '../../src/store/index.js';
import { cleanupTempDirs, tempDir, waitFor } from '../helpers/util.js';

after(cleanupTempDirs);

let agents = 0;
const newAgent = (store: Store) => store.agents.agents.create({
  name: `host-${++agents}`, method: 'join_token', attestationKey: `token:t${agents}`, attributes: {}, selfAsserted: {}, spiffePrefix: 'spiffe://td/agent/',
});

test('RevokedAgents: known revocations at start, new ones from the feed here and on a second node within 1 s, deletions too', async () => {
  const file = join((await tempDir('postern-revocations-')).path, 'postern.db');
  const nodeA = await openStore(file, { logger: silentLogger });
  const nodeB = await openStore(file, { logger: silentLogger });
  const feedA = new ChangeFeed(nodeA, { logger: silentLogger });
  const feedB = new ChangeFeed(nodeB, { logger: silentLogger });
  const before = await newAgent(nodeA);
  await nodeA.agents.agents.revoke(before.id, new Date().toISOString());
  const [live, doomed, deleted] = [await newAgent(nodeA), await newAgent(nodeA), await newAgent(nodeA)];
  const revokedA = new RevokedAgents(nodeA, feedA);
  const revokedB = new RevokedAgents(nodeB, feedB);
  try {
    await Promise.all([feedA.start(), feedB.start()]);
    await Promise.all([revokedA.start(), revokedB.start()]);
    assert.ok(revokedA.has(before.id) && revokedB.has(before.id), 'loaded at start');
    assert.ok(!revokedA.has(doomed.id) && !revokedB.has(doomed.id));

    const revokedAt = Date.now();
    await nodeA.agents.agents.revoke(doomed.id, new Date().toISOString());
    await waitFor(() => revokedA.has(doomed.id), { timeoutMs: 1_000, intervalMs: 10, what: 'this node to see the revocation' });
    await waitFor(() => revokedB.has(doomed.id), { timeoutMs: 1_000, intervalMs: 10, what: 'the second node to see the revocation' });
    assert.ok(Date.now() - revokedAt < 1_000, `seen on both nodes in ${Date.now() - revokedAt} ms`);

    await nodeA.agents.agents.delete(deleted.id);
    await waitFor(() => revokedB.has(deleted.id), { timeoutMs: 1_000, intervalMs: 10, what: 'a deleted agent to count as revoked' });
    assert.ok(!revokedA.has(live.id) && !revokedB.has(live.id), 'an agent that is neither revoked nor deleted is not');
  } finally {
    revokedA.stop();
    revokedB.stop();
    await Promise.all([feedA.stop(), feedB.stop()]);
    await Promise.all([nodeA.close(), nodeB.close()]);
  }
});
