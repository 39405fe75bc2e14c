// E2E: agent forwarding through a managed SSH socket with real OpenSSH (ssh -A and a real
// ssh-agent), allowed and refused by policy; and a connection that opens many sessions one after
// another is not held to the per-connection channel bound by the ones that closed.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile, spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import type { Client } from 'ssh2';
import { DEFAULT_SSH, startManagedSsh } from '../helpers/managed-ssh.js';
import type { ManagedSsh } from '../helpers/managed-ssh.js';
import { cleanupAll } from '../helpers/processes.js';
import { haveOpenSsh, sshKeyPair } from '../helpers/sshd.js';
import type { SshResult } from '../helpers/sshd.js';
import { waitFor } from '../helpers/util.js';

const run = promisify(execFile);

describe('managed SSH: agent forwarding and many sessions on one connection', { skip: !haveOpenSsh && process.env.CI !== 'true' ? 'OpenSSH is not installed' : false }, () => {
  let f: ManagedSsh;
  let agentSocket: string;
  let agentKey: string;
  let stopAgent: () => void;

  before(async () => {
    f = await startManagedSsh({});
    agentSocket = join(f.dir, 'agent.sock');
    const agent = spawn('ssh-agent', ['-D', '-a', agentSocket], { stdio: 'ignore' });
    stopAgent = () => agent.kill('SIGKILL');
    await waitFor(() => existsSync(agentSocket), { what: 'ssh-agent to listen', timeoutMs: 10_000 });
    const key = await sshKeyPair(f.dir, 'agent-held-key');
    await run('ssh-add', [key.path], { env: { ...process.env, SSH_AUTH_SOCK: agentSocket } });
    agentKey = key.publicKey.trim().split(/\s+/)[1]!;
  });

  after(async () => {
    stopAgent?.();
    await cleanupAll();
    await f?.stop();
  });

  /** `ssh -A` with the test's agent: the upstream lists the agent's keys (`ssh-add -L`). */
  const listForwardedKeys = () => new Promise<SshResult>((resolve) => {
    execFile('ssh', [...f.sshOptions(), '-A', f.target(), 'ssh-add', '-L'], { env: { ...process.env, SSH_AUTH_SOCK: agentSocket }, timeout: 30_000 }, (err, stdout, stderr) => {
      resolve({ code: err ? Number((err as { code?: number }).code ?? -1) : 0, stdout, stderr });
    });
  });

  test('an allowed agent forwarding reaches the upstream, through the edge, and is audited', async () => {
    await f.applyPolicy({ ...DEFAULT_SSH, exec: ['ssh-add -L'], agent_forwarding: true });
    const result = await listForwardedKeys();
    assert.equal(result.code, 0, result.stderr);
    assert.ok(result.stdout.includes(agentKey), `the upstream sees the user's agent key: ${result.stdout}`);
    const audited = await f.waitForEvent('ssh.forward.agent', () => true, 'the agent forwarding in the audit trail');
    assert.match(String(audited.connectionId), /^conn_/);
  });

  test('agent forwarding refused by policy: the session runs without it and stderr says why', async () => {
    await f.applyPolicy({ ...DEFAULT_SSH, exec: ['ssh-add -L'], agent_forwarding: false });
    const result = await listForwardedKeys();
    assert.notEqual(result.code, 0, 'ssh-add finds no agent upstream');
    assert.ok(!result.stdout.includes(agentKey));
    assert.match(result.stderr, /^postern: agent forwarding is not allowed on prod by \S+/m);
    const denied = await f.waitForEvent('access.denied', (e) => e.details.channel === 'agent_forwarding', 'the refused agent forwarding');
    assert.match(String(denied.connectionId), /^conn_/);
    await f.applyPolicy(DEFAULT_SSH);
  });

  test('sessions opened one after another on one connection are not held to the channel bound', async () => {
    const client: Client = await f.ssh2Client();
    try {
      for (let i = 0; i < 80; i++) {
        const output = await new Promise<string>((resolve, reject) => {
          client.exec(`echo n${i}`, (err, channel) => {
            if (err) return reject(err);
            let text = '';
            channel.on('data', (chunk: Buffer) => (text += chunk.toString()));
            channel.on('close', () => resolve(text));
          });
        });
        assert.equal(output, `n${i}\n`);
      }
    } finally {
      client.end();
    }
  });
});
