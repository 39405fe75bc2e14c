// SSH user certificates against real OpenSSH: ssh-keygen reads them, sshd (TrustedUserCAKeys +
// AuthorizedPrincipalsFile on a loopback port) accepts the right principal and refuses the rest.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile, spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import net from 'node:net';
import { tmpdir, userInfo } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { SshCertificateAuthority, parseSshPublicKey } from '../../src/ca/ssh-cert.js';
import { PosternError } from '../../src/errors.js';

const run = promisify(execFile);
const SSHD = '/usr/sbin/sshd';
const haveOpenSsh = existsSync(SSHD) && existsSync('/usr/bin/ssh') && existsSync('/usr/bin/ssh-keygen');
const minutes = (n: number) => new Date(Date.now() + n * 60_000);

async function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const server = net.createServer().listen(0, '127.0.0.1', () => {
      const { port } = server.address() as net.AddressInfo;
      server.close(() => resolve(port));
    });
  });
}

describe('SSH user certificates', { skip: !haveOpenSsh && process.env.CI !== 'true' ? 'OpenSSH is not installed' : false }, () => {
  let dir: string;
  let sshd: ChildProcess | undefined;
  let port: number;
  let ca: SshCertificateAuthority;
  const login = userInfo().username;

  const keyPair = async (name: string, type = 'ed25519') => {
    const path = join(dir, name);
    await run('ssh-keygen', ['-q', '-t', type, '-N', '', '-C', name, '-f', path]);
    return { path, publicKey: await readFile(`${path}.pub`, 'utf8') };
  };

  const sshAs = async (key: string, cert: string) => {
    await writeFile(`${key}-cert.pub`, cert + '\n');
    return new Promise<{ code: number | null; stdout: string; stderr: string }>((resolve) => {
      execFile('ssh', ['-p', String(port), '-i', key, '-o', `CertificateFile=${key}-cert.pub`, '-o', 'IdentitiesOnly=yes', '-o', 'BatchMode=yes',
        '-o', 'StrictHostKeyChecking=no', '-o', 'UserKnownHostsFile=/dev/null', '-o', 'LogLevel=ERROR', '-o', 'ConnectTimeout=5',
        `${login}@127.0.0.1`, 'echo', 'hello-from-sshd'], { timeout: 15_000 }, (err, stdout, stderr) => {
        resolve({ code: err ? (typeof (err as { code?: unknown }).code === 'number' ? (err as { code: number }).code : -1) : 0, stdout, stderr });
      });
    });
  };

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'postern-ssh-'));
    ca = SshCertificateAuthority.fromPrivateKey(SshCertificateAuthority.generateKey());
    await writeFile(join(dir, 'ca.pub'), ca.publicKey() + '\n');
    await writeFile(join(dir, `principals_${login}`), 'ops-login\n');
    await run('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-f', join(dir, 'host_key')]);
    await mkdir('/run/sshd', { recursive: true }).catch(() => undefined);
    port = await freePort();
    await writeFile(join(dir, 'sshd_config'), [
      `Port ${port}`, 'ListenAddress 127.0.0.1', `HostKey ${join(dir, 'host_key')}`, `PidFile ${join(dir, 'sshd.pid')}`,
      'UsePAM no', 'StrictModes no', 'PasswordAuthentication no', 'KbdInteractiveAuthentication no', 'PermitRootLogin prohibit-password',
      'AuthorizedKeysFile none', `TrustedUserCAKeys ${join(dir, 'ca.pub')}`, `AuthorizedPrincipalsFile ${join(dir, 'principals_%u')}`,
    ].join('\n') + '\n');
    sshd = spawn(SSHD, ['-D', '-e', '-f', join(dir, 'sshd_config')], { stdio: ['ignore', 'ignore', 'pipe'] });
    const deadline = Date.now() + 10_000;
    while (Date.now() < deadline) {
      const up = await new Promise<boolean>((resolve) => net.connect(port, '127.0.0.1').once('connect', function (this: net.Socket) {
        this.destroy();
        resolve(true);
      }).once('error', () => resolve(false)));
      if (up) break;
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
  });

  after(async () => {
    sshd?.kill('SIGKILL');
    await rm(dir, { recursive: true, force: true });
  });

  test('ssh-keygen reads the certificate: key id, principals, validity, extensions, CA', async () => {
    const { path, publicKey } = await keyPair('reader');
    const cert = ca.sign({ publicKey, keyId: 'ana@corp.example', principals: ['ana@corp.example', 'ops-login', 'postern'], validAfter: minutes(-5), validBefore: minutes(10) });
    await writeFile(`${path}-cert.pub`, cert + '\n');
    const { stdout } = await run('ssh-keygen', ['-L', '-f', `${path}-cert.pub`]);
    assert.match(stdout, /Type: ssh-ed25519-cert-v01@openssh.com user certificate/);
    assert.match(stdout, /Key ID: "ana@corp.example"/);
    assert.match(stdout, /Signing CA: ED25519/);
    assert.match(stdout, /Principals: \n\s+ana@corp.example\n\s+ops-login\n\s+postern/);
    assert.match(stdout, /permit-pty/);
  });

  test('sshd accepts an ed25519 and an ecdsa key certified for the right principal', async () => {
    for (const type of ['ed25519', 'ecdsa']) {
      const { path, publicKey } = await keyPair(`good-${type}`, type);
      const cert = ca.sign({ publicKey, keyId: 'ana@corp.example', principals: ['ana@corp.example', 'ops-login'], validAfter: minutes(-5), validBefore: minutes(10) });
      const result = await sshAs(path, cert);
      assert.equal(result.code, 0, result.stderr);
      assert.equal(result.stdout.trim(), 'hello-from-sshd');
    }
  });

  test('sshd refuses a certificate without the principal, an expired one, and one from another CA', async () => {
    const { path, publicKey } = await keyPair('bad');
    const wrongPrincipal = await sshAs(path, ca.sign({ publicKey, keyId: 'eve', principals: ['eve@corp.example'], validAfter: minutes(-5), validBefore: minutes(10) }));
    assert.notEqual(wrongPrincipal.code, 0);
    assert.match(wrongPrincipal.stderr, /Permission denied/);
    const expired = await sshAs(path, ca.sign({ publicKey, keyId: 'ana', principals: ['ops-login'], validAfter: minutes(-30), validBefore: minutes(-20) }));
    assert.notEqual(expired.code, 0);
    const other = SshCertificateAuthority.fromPrivateKey(SshCertificateAuthority.generateKey());
    const foreign = await sshAs(path, other.sign({ publicKey, keyId: 'ana', principals: ['ops-login'], validAfter: minutes(-5), validBefore: minutes(10) }));
    assert.notEqual(foreign.code, 0);
  });

  test('bad input is refused with clear errors', () => {
    assert.throws(() => parseSshPublicKey('ssh-rsa AAAAB3NzaC1yc2E= x'), (err: unknown) => err instanceof PosternError && /unsupported/.test(err.message));
    assert.throws(() => parseSshPublicKey('ssh-ed25519 AAAA'), PosternError);
    assert.throws(() => ca.sign({ publicKey: 'ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIA==', keyId: 'x', principals: ['a b'], validAfter: minutes(0), validBefore: minutes(1) }), PosternError);
  });
});
