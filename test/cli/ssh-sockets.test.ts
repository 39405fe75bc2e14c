// The CLI for managed SSH sockets against a real server: `socket create --type ssh
// --record-input`, `socket update --no-record-input / --forget-host-key`, `socket show` with the
// pin, the host CA's known_hosts line and the sshd_config lines (and --json), `connect --type
// ssh`, and `client ssh-config` writing the known_hosts file its block names, whose Match exec
// (`client ssh-keysign --host`) succeeds for an ssh socket host.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import net from 'node:net';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { cleanupAll, startConnector, startServer } from '../helpers/processes.js';
import type { ServerHandle } from '../helpers/processes.js';
import { api } from '../helpers/https.js';
import { haveOpenSsh } from '../helpers/sshd.js';
import { deviceLogin, laptopFor } from '../helpers/login.js';
import { runCli } from '../helpers/processes.js';

const run = promisify(execFile);
const HOST_KEY = 'ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAII+qq1xzldjQGwImdjM9bRTyOahKOm4fMeXHxLPb0kTT';
const PASSWORD = 'correct horse battery staple';

interface Shown {
  type: string;
  upstream: string | null;
  recordInput: boolean;
  upstreamHostKey: string | null;
  ssh?: { publicKey: string; sshdConfig: string[] };
  sshHostCa?: { public_key: string; known_hosts: string };
}

describe('CLI: ssh sockets', () => {
  let server: ServerHandle;
  let hostCa: { public_key: string; known_hosts: string };
  let userCa: string;
  const show = async (name: string): Promise<Shown> => {
    const shown = await server.cli(['socket', 'show', name, '--json']);
    assert.equal(shown.code, 0, shown.stderr);
    return JSON.parse(shown.stdout) as Shown;
  };

  before(async () => {
    server = await startServer();
    hostCa = (await api(server, '/api/v1/ssh/host-ca', { token: null })).json();
    userCa = (await api(server, '/api/v1/ssh/ca', { token: null })).json<{ publicKey: string }>().publicKey;
  });

  after(async () => {
    await cleanupAll();
  });

  test('socket create --type ssh --record-input, then show: no pin yet, the known_hosts line and the sshd_config lines', async () => {
    const created = await server.cli(['socket', 'create', '--name', 'prod', '--type', 'ssh', '--upstream', 'tcp://127.0.0.1:22', '--record-input']);
    assert.equal(created.code, 0, created.stderr);
    assert.match(created.stdout, /^type:\s+ssh$/m);
    assert.match(created.stdout, /^recordInput:\s+yes \(keystrokes too\)$/m);
    assert.match(created.stdout, /^upstreamHostKey:\s+none yet \(pinned at first use\)$/m);

    const text = await server.cli(['socket', 'show', 'prod']);
    assert.equal(text.code, 0, text.stderr);
    assert.match(text.stdout, /^upstreamHostKey:\s+none yet \(pinned at first use\)$/m);
    assert.ok(text.stdout.includes(`  ${hostCa.known_hosts}\n`), text.stdout);
    assert.ok(text.stdout.includes(`echo '${userCa}' | sudo tee /etc/ssh/postern_user_ca.pub`), text.stdout);
    assert.match(text.stdout, /^  TrustedUserCAKeys \/etc\/ssh\/postern_user_ca\.pub$/m);
    assert.match(text.stdout, /^  AuthorizedPrincipalsFile \/etc\/ssh\/postern_principals\/%u$/m);

    const json = await show('prod');
    assert.deepEqual([json.type, json.upstream, json.recordInput, json.upstreamHostKey], ['ssh', 'tcp://127.0.0.1:22', true, null]);
    assert.deepEqual(json.sshHostCa, hostCa);
    assert.deepEqual(json.ssh, { publicKey: userCa, sshdConfig: ['TrustedUserCAKeys /etc/ssh/postern_user_ca.pub', 'AuthorizedPrincipalsFile /etc/ssh/postern_principals/%u'] });
  });

  test('socket update: --no-record-input, a pinned key is shown, --forget-host-key clears it', async () => {
    const off = await server.cli(['socket', 'update', 'prod', '--no-record-input']);
    assert.equal(off.code, 0, off.stderr);
    assert.match(off.stdout, /^recordInput:\s+no \(output only\)$/m);
    // An edge pins the key it met first; here the API stands in for it.
    assert.equal((await api(server, '/api/v1/sockets/prod', { method: 'PATCH', body: { upstream_host_key: HOST_KEY } })).status, 200);
    const pinned = await server.cli(['socket', 'show', 'prod']);
    assert.match(pinned.stdout, new RegExp(`^upstreamHostKey:\\s+${HOST_KEY.replace(/[+/]/g, '\\$&')}$`, 'm'));
    const forgotten = await server.cli(['socket', 'update', 'prod', '--forget-host-key']);
    assert.equal(forgotten.code, 0, forgotten.stderr);
    assert.match(forgotten.stdout, /^upstreamHostKey:\s+none yet \(pinned at first use\)$/m);
    const json = await show('prod');
    assert.deepEqual([json.recordInput, json.upstreamHostKey], [false, null]);
    const again = await server.cli(['socket', 'update', 'prod', '--record-input']);
    assert.equal(again.code, 0, again.stderr);
    assert.equal((await show('prod')).recordInput, true);
  });

  test('bad input is one line and a non-zero exit', async () => {
    const http = await server.cli(['socket', 'create', '--name', 'bad', '--type', 'ssh', '--upstream', 'http://127.0.0.1:22']);
    assert.notEqual(http.code, 0);
    assert.equal(http.stderr.trim().split('\n').length, 1, http.stderr);
    assert.match(http.stderr, /tcp:\/\//);
    const web = await server.cli(['socket', 'create', '--name', 'web', '--record-input']);
    assert.notEqual(web.code, 0);
    assert.match(web.stderr, /record_input applies to ssh sockets only/);
    assert.equal(web.stderr.trim().split('\n').length, 1, web.stderr);
  });

  test('connect --type ssh creates an ssh socket with a tcp:// upstream and the connector serves it', async () => {
    // Only `connect`'s probe reaches it, and that closes at once (a reset is no failure here).
    const upstream = net.createServer((socket) => socket.on('error', () => undefined).end('SSH-2.0-test\r\n'));
    await new Promise<void>((resolve) => upstream.listen(0, '127.0.0.1', resolve));
    try {
      const port = (upstream.address() as net.AddressInfo).port;
      const connector = await startConnector(['connect', '--name', 'bastion', '--type', 'ssh', '--port', String(port)], server.env);
      assert.match(connector.process.stdout, /serving bastion/);
      assert.match(connector.process.stderr, /created socket bastion \(ssh\)/);
      const shown = await show('bastion');
      assert.deepEqual([shown.type, shown.upstream], ['ssh', `tcp://127.0.0.1:${port}`]);
      await connector.stop();
      const mismatch = await runCli(['connect', '--name', 'bastion', '--type', 'tls', '--port', String(port)], server.env);
      assert.notEqual(mismatch.code, 0);
      assert.match(mismatch.stderr, /socket "bastion" exists with type ssh, not tls/);
    } finally {
      upstream.close();
    }
  });

  test('client ssh-config writes the known_hosts file it names; its Match exec succeeds for an ssh socket host', { skip: !haveOpenSsh && process.env.CI !== 'true' ? 'OpenSSH is not installed' : false }, async () => {
    assert.equal((await api(server, '/api/v1/users', { method: 'POST', body: { email: 'ana@corp.example', password: PASSWORD } })).status, 201);
    const laptop = await laptopFor(server);
    const config = await runCli(['client', 'ssh-config'], laptop.env);
    assert.equal(config.code, 0, config.stderr);
    const knownHosts = join(laptop.configDir, 'known_hosts');
    assert.match(config.stdout, new RegExp(`^  UserKnownHostsFile ~/\\.ssh/known_hosts ${knownHosts.replace(/[.]/g, '\\.')}$`, 'm'));
    assert.equal(await readFile(knownHosts, 'utf8'), `${hostCa.known_hosts}\n`);
    const { stdout } = await run('ssh-keygen', ['-F', 'prod.localhost', '-f', knownHosts]);
    assert.match(stdout, /found: line 1 CA/);

    // The block's Match exec, for the ssh socket, as a person who is not an admin.
    await deviceLogin(server, laptop.configDir, 'ana@corp.example', PASSWORD);
    const keysign = await runCli(['client', 'ssh-keysign', '--host', 'prod.localhost'], laptop.env);
    assert.equal(keysign.code, 0, keysign.stderr);
    assert.match(keysign.stdout.trim(), /id_ed25519$/);
  });
});
