// One audit line per event: kills name the connection, socket and person they touched.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { describeEvent } from '../../src/reporting/describe.js';
import { auditEvent } from './helpers/audit.js';

test('describeEvent: a kill names the connection, its socket, its person and who killed it', () => {
  const one = auditEvent(1, { type: 'connection.killed', actor: 'admin@corp.example', socket: 'ssh', connectionId: 'conn_ab12', clientIp: '127.0.0.1', country: '', decision: 'allow', details: { user: 'ana@corp.example' } });
  assert.equal(describeEvent(one), 'connection.killed conn_ab12 on ssh (ana@corp.example) by admin@corp.example from 127.0.0.1');
  const all = auditEvent(2, { type: 'connection.killed', actor: 'token:ops', socket: '', connectionId: '', clientIp: '', country: '', decision: 'allow', details: { user: 'ana@corp.example', connections: ['conn_1', 'conn_2'] } });
  assert.equal(describeEvent(all), 'connection.killed 2 connections of ana@corp.example by token:ops');
});

test('describeEvent: an admin change says what it touched', () => {
  const change = auditEvent(3, { type: 'admin.change', actor: 'token:ops', socket: '', clientIp: '', country: '', decision: 'allow', rule: '', reason: 'socket grafana updated by token:ops' });
  assert.equal(describeEvent(change), 'token:ops admin.change: socket grafana updated by token:ops');
});
