// SSH user certificates against real OpenSSH: ssh-keygen reads them, sshd (TrustedUserCAKeys +
// AuthorizedPrincipalsFile on a loopback port) accepts the right principal and refuses the rest.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { haveOpenSsh, ssh, sshKeyPair, startSshd } from '../helpers/sshd.js';
import type { Sshd } from '../helpers/sshd.js';
import { SshCertificateAuthority, parseSshPublicKey } from '../../src/ca/ssh-cert.js';
import { PosternError } from '../../src/errors.js';

const run = promisify(execFile);
const minutes = (n: number) => new Date(Date.now() + n * 60_000);

describe('SSH user certificates', { skip: !haveOpenSsh && process.env.CI !== 'true' ? 'OpenSSH is not installed' : false }, () => {
  let dir: string;
  let sshd: Sshd;
  const ca = SshCertificateAuthority.fromPrivateKey(SshCertificateAuthority.generateKey());

  const keyPair = (name: string, type = 'ed25519') => sshKeyPair(dir, name, type);
  const sshAs = async (key: string, cert: string) => {
    await writeFile(`${key}-cert.pub`, cert + '\n');
    return ssh(key, '127.0.0.1', ['-p', String(sshd.port)], ['echo', 'hello-from-sshd']);
  };

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'postern-ssh-'));
    sshd = await startSshd(ca.publicKey(), ['ops-login']);
  });

  after(async () => {
    await sshd?.stop();
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
