// The OpenSSH certificate shims over ssh2 against real OpenSSH: the edge's SSH server shows a
// host certificate that `ssh` accepts through a @cert-authority line alone, and the edge's
// upstream client logs in to a real sshd with a user certificate.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import net from 'node:net';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import ssh2 from 'ssh2';
import { SshCertificateAuthority, deriveSshHostKey, generateSshKey } from '../../src/ca/index.js';
import { certificateLogin, certifiedHostKeys } from '../../src/edge/ssh/ssh2-extensions.js';
import { loginUpstream } from '../../src/edge/ssh/upstream.js';
import { LOGIN, haveOpenSsh, startSshd } from '../helpers/sshd.js';
import type { Sshd } from '../helpers/sshd.js';
import { tempDir } from '../helpers/util.js';

const skip = !haveOpenSsh && process.env.CI !== 'true' ? 'OpenSSH is not installed' : false;

describe('OpenSSH certificates over ssh2', { skip }, () => {
  const userCa = SshCertificateAuthority.fromPrivateKey(SshCertificateAuthority.generateKey());
  const hostCa = SshCertificateAuthority.fromPrivateKey(SshCertificateAuthority.generateKey());
  let sshd: Sshd;
  let dir: string;

  before(async () => {
    dir = (await tempDir('postern-sshcert-')).path;
    sshd = await startSshd(userCa.publicKey(), [LOGIN]);
  });
  after(async () => sshd?.stop());

  test('a real sshd accepts the certificate login of the upstream client', async () => {
    const stream = net.connect(sshd.port, '127.0.0.1');
    const upstream = await loginUpstream({ stream, login: LOGIN, email: 'ana@corp.example', userCa, pinnedHostKey: null, socket: 'prod', now: new Date(), timeoutMs: 10_000 });
    assert.match(upstream.hostKey, /^ssh-ed25519 AAAA/);
    const output = await new Promise<string>((resolve, reject) => {
      upstream.client.exec('echo certified', (err, channel) => {
        if (err) return reject(err);
        let text = '';
        channel.on('data', (chunk: Buffer) => (text += chunk.toString()));
        channel.on('close', () => resolve(text));
      });
    });
    upstream.client.end();
    assert.equal(output.trim(), 'certified');
  });

  test('a login the principals file does not list is refused with ssh_login_failed', async () => {
    const stream = net.connect(sshd.port, '127.0.0.1');
    await assert.rejects(
      loginUpstream({ stream, login: 'nobody-here', email: 'ana@corp.example', userCa, pinnedHostKey: null, socket: 'prod', now: new Date(), timeoutMs: 10_000 }),
      (err: Error & { code?: string }) => err.code === 'ssh_login_failed' || err.code === 'upstream_unreachable',
    );
  });

  test('a host key other than the pinned one is refused with ssh_host_key_changed', async () => {
    const other = ssh2.utils.generateKeyPairSync('ed25519').public;
    const stream = net.connect(sshd.port, '127.0.0.1');
    await assert.rejects(
      loginUpstream({ stream, login: LOGIN, email: 'ana@corp.example', userCa, pinnedHostKey: other, socket: 'prod', now: new Date(), timeoutMs: 10_000 }),
      (err: Error & { code?: string }) => err.code === 'ssh_host_key_changed' && /--forget-host-key/.test(err.message),
    );
  });

  test('ssh trusts the edge through a @cert-authority line, with strict host key checking', async () => {
    const derived = deriveSshHostKey(Buffer.alloc(32, 7), 'sock_1');
    const certificate = hostCa.sign({ certType: 'host', publicKey: derived.publicKey, keyId: 'prod.localhost', principals: ['prod.localhost'], validAfter: new Date(Date.now() - 60_000), validBefore: new Date(Date.now() + 3600_000), extensions: [] });
    const knownHosts = join(dir, 'known_hosts');
    await writeFile(knownHosts, `@cert-authority *.localhost ${hostCa.publicKey()}\n`);
    const listener = net.createServer((socket) => {
      const keys = certifiedHostKeys(derived.openSshPrivateKey, certificate);
      const server = new ssh2.Server({ hostKeys: keys.keys });
      server.on('connection', (connection) => {
        keys.bind(connection);
        connection.on('authentication', (ctx) => ctx.accept());
        connection.on('ready', () => connection.on('session', (accept) => accept().on('exec', (acceptExec) => {
          const channel = acceptExec();
          channel.write('hello from the edge\n');
          channel.exit(0);
          channel.end();
        })));
        connection.on('error', () => undefined);
      });
      server.injectSocket(socket);
    });
    await new Promise<void>((resolve) => listener.listen(0, '127.0.0.1', resolve));
    const port = (listener.address() as net.AddressInfo).port;
    try {
      const result = await new Promise<{ code: number; stdout: string; stderr: string }>((resolve) => {
        execFile('ssh', ['-F', '/dev/null', '-p', String(port), '-o', `UserKnownHostsFile=${knownHosts}`, '-o', 'GlobalKnownHostsFile=/dev/null', '-o', 'StrictHostKeyChecking=yes',
          '-o', 'BatchMode=yes', '-o', 'HostKeyAlias=prod.localhost', `${LOGIN}@127.0.0.1`, 'anything'], { timeout: 15_000 }, (err, stdout, stderr) => {
          resolve({ code: err ? Number((err as { code?: number }).code ?? -1) : 0, stdout, stderr });
        });
      });
      assert.equal(result.code, 0, result.stderr);
      assert.equal(result.stdout, 'hello from the edge\n');
      assert.doesNotMatch(result.stderr, /WARNING|authenticity/);
    } finally {
      listener.close();
    }
  });

  test('a login key is parsed before anything connects; attaching needs a connecting client', () => {
    const keys = generateSshKey();
    const certificate = userCa.sign({ publicKey: keys.publicKey, keyId: 'x', principals: ['x'], validAfter: new Date(Date.now() - 1000), validBefore: new Date(Date.now() + 60_000) });
    const login = certificateLogin(keys.openSshPrivateKey, certificate);
    assert.equal(login.key.type, 'ssh-ed25519-cert-v01@openssh.com');
    assert.throws(() => login.attach(new ssh2.Client()), /no protocol/);
    assert.throws(() => certificateLogin('not a key', certificate));
  });

  test('every generated login key is one ssh2 parses (its own generator fails a few in a thousand)', () => {
    for (let i = 0; i < 2000; i++) {
      const parsed = ssh2.utils.parseKey(generateSshKey().openSshPrivateKey);
      assert.ok(!(parsed instanceof Error), `key ${i}: ${parsed instanceof Error ? parsed.message : ''}`);
    }
  });
});
