// Which named sockets a policy can govern: its namespace and below only.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { outsideMessage, policyCoverage } from '../../src/policy/index.js';
import type { NamedSocket } from '../../src/policy/index.js';

const sockets: NamedSocket[] = [
  { name: 'grafana', tags: {} },
  { name: 'wiki', tags: { namespace: 'corp' } },
  { name: 'ssh', tags: { namespace: 'corp/support' } },
  { name: 'payroll', tags: { namespace: 'hr' } },
];

test('policyCoverage: named sockets in the namespace or below are covered, others are outside or unknown', () => {
  assert.deepEqual(policyCoverage({ namespace: 'corp', sockets: ['wiki', 'ssh', 'grafana', 'payroll', 'gone'] }, sockets), {
    covered: ['wiki', 'ssh'],
    outside: [{ name: 'grafana', namespace: '' }, { name: 'payroll', namespace: 'hr' }],
    unknown: ['gone'],
  });
  assert.deepEqual(policyCoverage({ sockets: ['grafana', 'payroll'] }, sockets).covered, ['grafana', 'payroll'], 'the root namespace covers every socket');
  assert.deepEqual(policyCoverage({ namespace: 'corp/support', sockets: ['wiki'] }, sockets).outside, [{ name: 'wiki', namespace: 'corp' }], 'a parent is not below its child');
  assert.deepEqual(policyCoverage({ namespace: 'corp' }, sockets), { covered: [], outside: [], unknown: [] });
});

test('outsideMessage: one line that says why and how to fix it', () => {
  assert.equal(outsideMessage('corp', { name: 'grafana', namespace: '' }), 'socket grafana is in namespace "" which is not under corp: tag it namespace=corp or put the policy in ""');
});
