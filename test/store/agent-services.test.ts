// The agent-services repository: a declaration is inserted, then replaced by the next one for
// the same namespace/name (the last agent to declare it is named), and pages in id order.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { openStore, silentLogger } from '../../src/store/index.js';

test('services: declare inserts, declaring again replaces, get and list page in namespace/name order', async () => {
  const store = await openStore(':memory:', { logger: silentLogger });
  try {
    const repo = store.agents.services;
    const first = await repo.declare({ namespace: 'fin', name: 'payroll', spiffeId: 'spiffe://td/ns/fin/svc/payroll', agentId: 'agt_1', port: 8443, process: { exe: '/usr/bin/payroll', uid: 1001 }, labels: { env: 'prod', app: 'payroll' } });
    assert.equal(first.id, 'fin/payroll');
    assert.deepEqual(await repo.get('fin', 'payroll'), first);
    const again = await repo.declare({ namespace: 'fin', name: 'payroll', spiffeId: 'spiffe://td/ns/fin/svc/payroll', agentId: 'agt_2', labels: { app: 'payroll' } });
    const read = await repo.get('fin', 'payroll');
    assert.deepEqual(read, again);
    assert.equal(read!.agentId, 'agt_2');
    assert.equal(read!.port, null);
    assert.equal(read!.process, null);
    assert.deepEqual(read!.labels, { app: 'payroll' });
    await repo.declare({ namespace: 'default', name: 'web', spiffeId: 'spiffe://td/ns/default/svc/web', agentId: 'agt_1', labels: {} });
    await repo.declare({ namespace: 'fin', name: 'ledger', spiffeId: 'spiffe://td/ns/fin/svc/ledger', agentId: 'agt_1', labels: {} });
    assert.deepEqual((await repo.list({ limit: 2 })).map((s) => s.id), ['default/web', 'fin/ledger']);
    assert.deepEqual((await repo.list({ after: 'fin/ledger', limit: 2 })).map((s) => s.id), ['fin/payroll']);
    assert.equal(await repo.get('fin', 'nope'), undefined);
  } finally {
    await store.close();
  }
});
