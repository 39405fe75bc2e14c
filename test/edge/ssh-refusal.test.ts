import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { compilePolicies } from '../../src/policy/index.js';
import type { PolicyDocument, RequestContext } from '../../src/policy/index.js';
import { evaluate } from '../../src/policy/index.js';
import { clampTerminal, refusalLine } from '../../src/edge/ssh/refusal.js';
import { hostKeyLine, normalizedHostKey } from '../../src/edge/ssh/upstream.js';

const policy: PolicyDocument = {
  name: 'ssh',
  namespace: 'corp',
  sockets: ['prod'],
  rules: [
    { name: 'support', effect: 'allow', who: { email: ['jane@corp.example'] }, what: { ssh: { logins: ['support'], shell: true, exec: ['uptime'], port_forwarding: false } } },
    { name: 'no-root', effect: 'deny', what: { ssh: { logins: ['root'] } } },
  ],
};

function context(action: RequestContext['action']): RequestContext {
  return {
    socket: { name: 'prod', namespace: 'corp', tags: {} },
    principal: { user: { id: 'u1', email: 'jane@corp.example', groups: [] } },
    clientIp: '127.0.0.1', at: new Date('2026-12-02T10:00:00Z'), action,
  };
}

describe('managed SSH refusals', () => {
  const set = compilePolicies([{ document: policy, version: 1 }]);
  const line = (action: RequestContext['action']) => {
    const ctx = context(action);
    return refusalLine(ctx, set, evaluate(ctx, set));
  };

  test('a forward refused by an allow rule that forbids it names that rule', () => {
    assert.equal(line({ protocol: 'ssh', login: 'support', channel: 'local_forward', target: 'db:5432' }), 'postern: port forwarding (local) is not allowed on prod by corp/ssh#support');
  });

  test('a login refused by a deny rule names the deny rule', () => {
    assert.equal(line({ protocol: 'ssh', login: 'root' }), 'postern: login root is not allowed on prod by corp/ssh#no-root');
  });

  test('a command outside the exec globs is quoted, control bytes shown as ?', () => {
    assert.equal(line({ protocol: 'ssh', login: 'support', channel: 'exec', command: 'rm -rf /\u001b[2J' }), 'postern: the command "rm -rf /?[2J" is not allowed on prod by corp/ssh#support');
  });

  test('allowed actions are not refused', () => {
    const ctx = context({ protocol: 'ssh', login: 'support', channel: 'exec', command: 'uptime' });
    assert.equal(evaluate(ctx, set).effect, 'allow');
  });

  test('terminal sizes are clamped and defaulted', () => {
    assert.deepEqual(clampTerminal({ cols: 100_000, rows: 100_000, width: 1e9, height: -1 }), { cols: 2000, rows: 1000, width: 16384, height: 0 });
    assert.deepEqual(clampTerminal({ cols: 0, rows: Number.NaN }), { cols: 80, rows: 24, width: 0, height: 0 });
  });

  test('host keys compare by type and key, never by comment', () => {
    const blob = Buffer.concat([Buffer.from([0, 0, 0, 11]), Buffer.from('ssh-ed25519'), Buffer.from([0, 0, 0, 2, 1, 2])]);
    assert.equal(hostKeyLine(blob), `ssh-ed25519 ${blob.toString('base64')}`);
    assert.equal(normalizedHostKey(`ssh-ed25519 ${blob.toString('base64')} root@host\n`), hostKeyLine(blob));
  });
});
