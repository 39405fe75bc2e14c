// E2E: managed SSH channels other than a shell, with the real OpenSSH clients — sftp (batch put, get,
// rm), scp over sftp and legacy `scp -O`, audited with paths and byte counts or refused by policy;
// local and remote port forwards refused or allowed; and the upstream host key pinned on first use,
// a changed one refused until `socket update --forget-host-key`.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { readFile, writeFile } from 'node:fs/promises';
import net from 'node:net';
import { join } from 'node:path';
import { DEFAULT_SSH, SOCKET, keyBody, startManagedSsh } from '../helpers/managed-ssh.js';
import type { ManagedSsh } from '../helpers/managed-ssh.js';
import { cleanupAll } from '../helpers/processes.js';
import type { AuditEvent } from '../../src/reporting/events.js';
import { LOGIN, haveOpenSsh } from '../helpers/sshd.js';
import { freePort, tempDir, waitFor, withTimeout } from '../helpers/util.js';

const SIZE = 300 * 1024 + 17;

/** Sum of the byte counts of the events about `path` (one event per operation or per handle, either adds up). */
const bytesOf = (events: AuditEvent[], path: string) => events.filter((e) => e.details.path === path).reduce((sum, e) => sum + Number(e.details.bytes ?? 0), 0);

/** Sends `text` through 127.0.0.1:port and resolves with what came back before the connection closed (or 5 s passed). */
function roundTrip(port: number, text: string): Promise<string> {
  return new Promise((resolve) => {
    let got = '';
    const socket = net.connect(port, '127.0.0.1', () => socket.write(text));
    const timer = setTimeout(() => socket.destroy(), 5_000);
    socket.setEncoding('utf8');
    socket.on('data', (chunk: string) => {
      got += chunk;
      if (got.length >= text.length) socket.end();
    });
    socket.on('error', () => undefined);
    socket.on('close', () => (clearTimeout(timer), resolve(got)));
  });
}

const listening = (port: number) => new Promise<boolean>((resolve) => {
  const probe = net.connect(port, '127.0.0.1');
  probe.once('connect', () => (probe.destroy(), resolve(true))).once('error', () => resolve(false));
});

describe('managed SSH: sftp, scp, port forwarding and the upstream host key', { skip: !haveOpenSsh && process.env.CI !== 'true' ? 'OpenSSH is not installed' : false }, () => {
  let f: ManagedSsh;
  let remote: string;
  let payload: Buffer;
  let local: string;
  let echo: net.Server;
  let echoPort: number;

  before(async () => {
    f = await startManagedSsh();
    // The upstream sshd runs on this machine: its files are the test's files.
    remote = (await tempDir('postern-sftp-remote-')).path;
    payload = randomBytes(SIZE);
    local = join(f.dir, 'upload.bin');
    await writeFile(local, payload);
    echo = net.createServer((socket) => socket.on('error', () => undefined).pipe(socket));
    await new Promise<void>((resolve) => echo.listen(0, '127.0.0.1', resolve));
    echoPort = (echo.address() as net.AddressInfo).port;
  });

  after(async () => {
    echo?.close();
    await cleanupAll();
    await f?.stop();
  });

  test('sftp put, get and rm, scp over sftp and legacy scp -O, each audited with its paths and bytes', async () => {
    const batch = join(f.dir, 'batch');
    await writeFile(batch, `put ${local} ${remote}/up.bin\nget ${remote}/up.bin ${f.dir}/down.bin\nmkdir ${remote}/sub\nrename ${remote}/up.bin ${remote}/sub/moved.bin\nrm ${remote}/sub/moved.bin\nrmdir ${remote}/sub\n`);
    const sftp = await f.runTool('sftp', ['-b', batch, f.target()]);
    assert.equal(sftp.code, 0, sftp.stderr);
    assert.deepEqual(await readFile(join(f.dir, 'down.bin')), payload);
    assert.equal(existsSync(join(remote, 'sub')), false);

    const written = await waitFor(async () => {
      const events = await f.events('ssh.sftp.write');
      return bytesOf(events, `${remote}/up.bin`) >= SIZE && events;
    }, { what: 'the sftp writes in the audit trail', timeoutMs: 10_000, intervalMs: 250 });
    assert.equal(bytesOf(written, `${remote}/up.bin`), SIZE);
    assert.equal(bytesOf(await f.events('ssh.sftp.read'), `${remote}/up.bin`), SIZE);
    assert.ok((await f.events('ssh.sftp.open')).some((e) => e.details.path === `${remote}/up.bin`));
    assert.ok((await f.events('ssh.sftp.mkdir')).some((e) => e.details.path === `${remote}/sub`));
    const renamed = (await f.events('ssh.sftp.rename')).find((e) => e.details.from === `${remote}/up.bin`);
    assert.equal(renamed?.details.to, `${remote}/sub/moved.bin`);
    assert.ok((await f.events('ssh.sftp.remove')).some((e) => e.details.path === `${remote}/sub/moved.bin`));
    assert.ok((await f.events('ssh.sftp.rmdir')).some((e) => e.details.path === `${remote}/sub`));
    assert.ok(written.every((e) => /^conn_/.test(e.connectionId)), 'every event names its SSH connection');

    const modern = await f.runTool('scp', ['-q', local, `${f.target()}:${remote}/modern.bin`]);
    assert.equal(modern.code, 0, modern.stderr);
    assert.deepEqual(await readFile(join(remote, 'modern.bin')), payload);
    await f.waitForEvent('ssh.sftp.write', (e) => e.details.path === `${remote}/modern.bin`, 'scp over sftp in the audit trail');

    const legacy = await f.runTool('scp', ['-O', '-q', local, `${f.target()}:${remote}/legacy.bin`]);
    assert.equal(legacy.code, 0, legacy.stderr);
    assert.deepEqual(await readFile(join(remote, 'legacy.bin')), payload);
    const scp = await f.waitForEvent('ssh.scp', (e) => String(e.details.command).includes(`${remote}/legacy.bin`), 'scp -O in the audit trail');
    assert.match(String(scp.details.command), /^scp .*-t/);
  });

  test('with sftp and scp off, sftp, scp and scp -O are refused with the reason and write nothing', async () => {
    await f.applyPolicy({ ...DEFAULT_SSH, sftp: false, scp: false });
    try {
      const batch = join(f.dir, 'batch-refused');
      await writeFile(batch, `put ${local} ${remote}/refused-sftp.bin\n`);
      const sftp = await f.runTool('sftp', ['-b', batch, f.target()]);
      assert.notEqual(sftp.code, 0);
      assert.match(sftp.stderr, new RegExp(`^postern: .*sftp.* is not allowed on ${SOCKET}\\b`, 'm'));
      const modern = await f.runTool('scp', ['-q', local, `${f.target()}:${remote}/refused-modern.bin`]);
      assert.notEqual(modern.code, 0);
      assert.match(modern.stderr, new RegExp(`^postern: .*sftp.* is not allowed on ${SOCKET}\\b`, 'm'));
      const legacy = await f.runTool('scp', ['-O', '-q', local, `${f.target()}:${remote}/refused-legacy.bin`]);
      assert.notEqual(legacy.code, 0);
      assert.match(legacy.stderr, new RegExp(`^postern: .*scp.* is not allowed on ${SOCKET}\\b`, 'm'));
      for (const name of ['refused-sftp.bin', 'refused-modern.bin', 'refused-legacy.bin']) assert.equal(existsSync(join(remote, name)), false, name);
      const denied = await waitFor(async () => {
        const events = (await f.events('access.denied')).filter((e) => e.details.protocol === 'ssh');
        return events.filter((e) => /sftp|scp/.test(String(e.details.channel))).length >= 3 && events;
      }, { what: 'three refusals in the audit trail', timeoutMs: 10_000, intervalMs: 250 });
      assert.ok(denied.every((e) => /^conn_/.test(e.connectionId)));
    } finally {
      await f.applyPolicy(DEFAULT_SSH);
    }
  });

  test('observe mode: a login and a command an observing policy would deny run, each recorded as access.would_deny', async () => {
    const file = join(f.dir, 'observe.yaml');
    await writeFile(file, `name: ssh-observe\nsockets: [${SOCKET}]\nmode: observe\nrules:\n  - name: no-${LOGIN}\n    effect: deny\n    what: { ssh: { logins: [${LOGIN}] } }\n`);
    assert.equal((await f.server.cli(['policy', 'apply', '-f', file])).code, 0);
    try {
      const run = await f.runSsh([f.target(), 'echo observed']);
      assert.equal(run.code, 0, run.stderr);
      assert.equal(run.stdout.trim(), 'observed');
      const events = await waitFor(async () => {
        const found = (await f.events('access.would_deny')).filter((e) => e.details.protocol === 'ssh' && e.rule === 'ssh-observe#no-' + LOGIN);
        return found.some((e) => e.details.channel === 'exec') && found.some((e) => e.details.channel === undefined) && found;
      }, { what: 'would_deny events for the login and the exec', timeoutMs: 10_000, intervalMs: 250 });
      const exec = events.find((e) => e.details.channel === 'exec')!;
      assert.equal(exec.details.command, 'echo observed');
      assert.equal(exec.details.login, LOGIN);
      assert.match(exec.reason, /^would be denied by rule ssh-observe#no-/);
    } finally {
      assert.equal((await f.server.cli(['policy', 'delete', 'ssh-observe'])).code, 0);
    }
  });

  test('port forwarding off: ssh -L gets "administratively prohibited" with the reason, ssh -R fails to forward', async () => {
    const localPort = await freePort();
    const forward = f.spawnSsh(['-N', '-L', `127.0.0.1:${localPort}:127.0.0.1:${echoPort}`, f.target()]);
    await waitFor(() => listening(localPort), { what: `ssh -L listening on :${localPort}`, timeoutMs: 15_000 });
    assert.equal(await roundTrip(localPort, 'ping'), '', 'nothing reaches the target');
    await forward.waitForOutput(new RegExp(`open failed: administratively prohibited: postern: port forwarding \\(local\\) is not allowed on ${SOCKET} by \\S+`), { stream: 'stderr' });
    await forward.stop();
    const denied = await f.waitForEvent('access.denied', (e) => e.details.protocol === 'ssh' && /forward/.test(String(e.details.channel)), 'the refused forward in the audit trail');
    assert.match(String(denied.connectionId), /^conn_/);

    const remotePort = await freePort();
    const reverse = f.spawnSsh(['-N', '-o', 'ExitOnForwardFailure=yes', '-R', `127.0.0.1:${remotePort}:127.0.0.1:${echoPort}`, f.target()]);
    const exit = await withTimeout(reverse.exited, 15_000, 'ssh -R to give up');
    assert.notEqual(exit.code, 0);
    assert.match(reverse.stderr, /remote port forwarding failed/);
    assert.equal(await listening(remotePort), false, 'nobody listens on the remote side');
  });

  test('port forwarding { local: true }: ssh -L carries bytes and is audited; -R stays refused', async () => {
    await f.applyPolicy({ ...DEFAULT_SSH, port_forwarding: { local: true, remote: false } });
    try {
      const localPort = await freePort();
      const forward = f.spawnSsh(['-N', '-L', `127.0.0.1:${localPort}:127.0.0.1:${echoPort}`, f.target()]);
      await waitFor(() => listening(localPort), { what: `ssh -L listening on :${localPort}`, timeoutMs: 15_000 });
      assert.equal(await roundTrip(localPort, 'ping through the forward'), 'ping through the forward');
      const audited = await f.waitForEvent('ssh.forward.local', (e) => e.details.target === `127.0.0.1:${echoPort}`, 'the forward in the audit trail');
      assert.match(String(audited.connectionId), /^conn_/);
      await forward.stop();

      const remotePort = await freePort();
      const reverse = f.spawnSsh(['-N', '-o', 'ExitOnForwardFailure=yes', '-R', `127.0.0.1:${remotePort}:127.0.0.1:${echoPort}`, f.target()]);
      assert.notEqual((await withTimeout(reverse.exited, 15_000, 'ssh -R to give up')).code, 0);
      assert.equal(await listening(remotePort), false);
    } finally {
      await f.applyPolicy(DEFAULT_SSH);
    }
  });

  test('the upstream host key is pinned; a changed one is refused with a clear error until socket update --forget-host-key', async () => {
    const first = await f.runSsh([f.target(), 'echo', 'pinned']);
    assert.equal(first.code, 0, first.stderr);
    const before = await f.hostKey();
    const shown = await f.server.cli(['socket', 'show', SOCKET, '--json']);
    assert.ok(shown.stdout.includes(keyBody(before)), `socket show has the pinned host key: ${shown.stdout}`);

    const after = await f.rotateHostKey();
    assert.notEqual(keyBody(after), keyBody(before));
    const refused = await f.runSsh([f.target(), 'echo', 'should not run']);
    assert.notEqual(refused.code, 0);
    assert.doesNotMatch(refused.stdout, /should not run/);
    assert.match(refused.stderr, /^postern: .*host key/im);

    const forgot = await f.server.cli(['socket', 'update', SOCKET, '--forget-host-key']);
    assert.equal(forgot.code, 0, forgot.stderr);
    const again = await f.runSsh([f.target(), 'echo', 'pinned again']);
    assert.equal(again.code, 0, again.stderr);
    assert.equal(again.stdout, 'pinned again\n');
    const repinned = (await f.server.cli(['socket', 'show', SOCKET, '--json'])).stdout;
    assert.ok(repinned.includes(keyBody(after)) && !repinned.includes(keyBody(before)), `the new key is pinned, the old one gone: ${repinned}`);
  });
});
