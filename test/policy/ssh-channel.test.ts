// SSH channels: labels, legacy scp told apart from exec, command globs, and actions described in words.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { SSH_CHANNELS, commandGlobMatches, describedSshAction, sshChannelLabel, sshExecChannel } from '../../src/policy/ssh-channel.js';
import * as policy from '../../src/policy/index.js';

test('sshChannelLabel: the words a user reads, for every channel', () => {
  assert.deepEqual(Object.fromEntries(SSH_CHANNELS.map((c) => [c, policy.sshChannelLabel(c)])), {
    shell: 'a shell',
    exec: 'running commands',
    sftp: 'sftp',
    scp: 'scp',
    local_forward: 'port forwarding (local)',
    remote_forward: 'port forwarding (remote)',
    agent_forwarding: 'agent forwarding',
    x11: 'X11 forwarding',
  });
  assert.equal(sshChannelLabel, policy.sshChannelLabel);
});

test('sshExecChannel: scp -t / -f with options and paths is scp', () => {
  for (const command of ['scp -t /tmp', 'scp -r -t -- dir', 'scp -f x', 'scp -v -r -p -d -t /srv/up', 'scp -pt .', 'scp -f a b c', 'scp -t -- -odd-name', '  scp -f  x ', 'scp -f ~/logs/*.gz', 'scp -t /home/über/dir']) {
    assert.equal(sshExecChannel(command), 'scp', command);
  }
  assert.equal(policy.sshExecChannel('scp -t /tmp'), 'scp');
});

test('sshExecChannel: anything else is exec, including scp lines a shell would run more of', () => {
  for (const command of [
    'echo scp -t', 'scp', 'scp /a /b', 'scp -t', 'scp -t -f x', 'scp -tf x', 'scp -x -t y', 'scp -S /tmp/evil -t x', '/usr/bin/scp -t x',
    'scp -t /tmp; rm -rf /', 'scp -t /tmp && id', 'scp -t $(id)', 'scp -t `id`', 'scp -t x | sh', 'scp -t x > /etc/passwd', 'scp -t "a b"',
    "scp -t 'x'", 'scp -t x\nid', 'scp -t x\tid', 'scp -t x -r', 'scp -t a\\;b', 'SCP -t x', '', 'uptime',
  ]) {
    assert.equal(sshExecChannel(command), 'exec', JSON.stringify(command));
  }
});

test('commandGlobMatches: * spans spaces and slashes, the rest is literal, the whole line counts', () => {
  assert.equal(commandGlobMatches('uptime', 'uptime'), true);
  assert.equal(commandGlobMatches('uptime', 'uptime -p'), false);
  assert.equal(commandGlobMatches('uptime', ' uptime'), false);
  assert.equal(commandGlobMatches('systemctl status *', 'systemctl status nginx.service'), true);
  assert.equal(commandGlobMatches('systemctl status *', 'systemctl status '), true);
  assert.equal(commandGlobMatches('systemctl status *', 'systemctl status'), false);
  assert.equal(commandGlobMatches('cat /var/log/*', 'cat /var/log/nginx/access.log /var/log/x'), true);
  assert.equal(commandGlobMatches('*', ''), true);
  assert.equal(commandGlobMatches('a*b*c', 'a--b--b--c'), true);
  assert.equal(commandGlobMatches('a*b*c', 'a--b--b--'), false);
  assert.equal(commandGlobMatches('git-upload-pack *', 'git-upload-pack \'repo.git\''), true);
  assert.equal(commandGlobMatches('ls ?', 'ls x'), false, '? is literal');
  assert.equal(commandGlobMatches('ls [ab]', 'ls [ab]'), true, 'brackets are literal');
  assert.equal(commandGlobMatches('echo .*', 'echo .x'), true);
  assert.equal(commandGlobMatches('echo .*', 'echo x'), false, '. is literal');
});

test('commandGlobMatches: a long line against many stars is answered, not backtracked for ever', () => {
  const line = 'a'.repeat(200_000);
  assert.equal(commandGlobMatches('*a*a*a*a*a*b', line), false);
  assert.equal(commandGlobMatches('*a*a*a*a*a*', line), true);
});

test('describedSshAction: a command alone is exec or scp; contradictions and unknown channels are problems', () => {
  assert.deepEqual(describedSshAction({ login: 'deploy' }), { ok: { protocol: 'ssh', login: 'deploy' } });
  assert.deepEqual(describedSshAction({ command: 'uptime' }), { ok: { protocol: 'ssh', channel: 'exec', command: 'uptime' } });
  assert.deepEqual(describedSshAction({ login: 'ops', command: 'scp -t /tmp' }), { ok: { protocol: 'ssh', login: 'ops', channel: 'scp', command: 'scp -t /tmp' } });
  assert.deepEqual(describedSshAction({ channel: 'remote_forward' }), { ok: { protocol: 'ssh', channel: 'remote_forward' } });
  assert.deepEqual(describedSshAction({ channel: 'exec', command: 'id' }), { ok: { protocol: 'ssh', channel: 'exec', command: 'id' } });
  assert.deepEqual(describedSshAction({ channel: 'forward' }), { field: 'channel', problem: '"forward" is not an SSH channel (one of shell, exec, sftp, scp, local_forward, remote_forward, agent_forwarding, x11)' });
  assert.deepEqual(describedSshAction({ channel: 'exec', command: 'scp -f x' }), { field: 'command', problem: '"scp -f x" is an scp command: the channel is scp' });
  assert.deepEqual(describedSshAction({ channel: 'scp', command: 'id' }), { field: 'command', problem: '"id" is not an scp command: the channel is exec' });
  assert.deepEqual(describedSshAction({ channel: 'shell', command: 'id' }), { field: 'command', problem: 'only exec and scp channels have a command (the channel is shell)' });
});
