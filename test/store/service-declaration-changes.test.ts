// A service declaration is a change only when it changes: the same one again (every SVID
// renewal) adds no revision, a new or different one (labels, agent, selector) does, so the
// agents' mesh view on every node follows it.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { openStore, silentLogger } from '../../src/store/index.js';

test('services: a declaration is logged when new or changed, not when repeated', async () => {
  const store = await openStore(':memory:', { logger: silentLogger });
  try {
    const id = { namespace: 'fin', name: 'payroll', spiffeId: 'spiffe://td/ns/fin/svc/payroll' };
    const first = { ...id, agentId: 'agt_1', port: 8443, process: { exe: '/usr/bin/payroll', uid: 1001 }, labels: { env: 'prod', app: 'payroll' } };
    const logged = async (declaration: Parameters<typeof store.agents.services.declare>[0]) => {
      const revision = await store.currentRevision();
      await store.agents.services.declare(declaration);
      return (await store.changesSince(revision)).map((c) => [c.entity, c.entityId, c.op]);
    };
    assert.deepEqual(await logged(first), [['agent_service', 'fin/payroll', 'create']]);
    assert.deepEqual(await logged({ ...first, labels: { app: 'payroll', env: 'prod' } }), [], 'the same declaration (labels in another order) is no change');
    assert.equal((await store.agents.services.get('fin', 'payroll'))?.agentId, 'agt_1');
    const update = [['agent_service', 'fin/payroll', 'update']];
    assert.deepEqual(await logged({ ...first, labels: { app: 'payroll' } }), update, 'labels');
    assert.deepEqual(await logged({ ...first, labels: { app: 'payroll' }, agentId: 'agt_2' }), update, 'the agent');
    assert.deepEqual(await logged({ ...id, agentId: 'agt_2', labels: { app: 'payroll' } }), update, 'no port, no process any more');
    assert.deepEqual(await logged({ ...id, agentId: 'agt_2', labels: { app: 'payroll' } }), []);
    const stored = await store.agents.services.get('fin', 'payroll');
    assert.deepEqual([stored?.agentId, stored?.port, stored?.process, stored?.labels], ['agt_2', null, null, { app: 'payroll' }]);
  } finally {
    await store.close();
  }
});
