// SSH host keys and host certificates against real OpenSSH and ssh2: derived keys are the same
// for the same seed and socket, read by `ssh-keygen -y` and ssh2's parseKey; host certificates
// are read by `ssh-keygen -L`, and ssh trusts an sshd presenting one through a known_hosts
// @cert-authority line — for the certified name only. The sealed host CA and seed are created once.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { randomBytes, sign, verify, createPublicKey } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import ssh2 from 'ssh2';
import { LOGIN, haveOpenSsh, sshKeyPair, startSshd } from '../helpers/sshd.js';
import type { Sshd } from '../helpers/sshd.js';
import { SshCertificateAuthority, parseSshPublicKey } from '../../src/ca/ssh-cert.js';
import { deriveSshHostKey } from '../../src/ca/ssh-host-key.js';
import { createKeyCipher } from '../../src/ca/key-cipher.js';
import { loadOrCreateSshCa, loadOrCreateSshHostCa, loadOrCreateSshHostKeySeed } from '../../src/control/server-keys.js';
import { PosternError, isPosternError } from '../../src/errors.js';
import { MemorySecrets } from './helpers.js';

const run = promisify(execFile);
const minutes = (n: number) => new Date(Date.now() + n * 60_000);
const skip = !haveOpenSsh && process.env.CI !== 'true' ? 'OpenSSH is not installed' : false;

/** The certificate type field (after the key type, the nonce and the key's fields). */
function certTypeOf(certLine: string): number {
  const blob = Buffer.from(certLine.split(' ')[1]!, 'base64');
  let offset = 0;
  const skipString = () => (offset += 4 + blob.readUInt32BE(offset));
  skipString(); // key type
  skipString(); // nonce
  skipString(); // ed25519 public key
  offset += 8; // serial
  return blob.readUInt32BE(offset);
}

describe('SSH host keys', () => {
  const seed = randomBytes(32);

  test('the same seed and socket give the same key; another socket or seed another one', () => {
    const a = deriveSshHostKey(seed, 'sock_aaaaaaaaaaaaaaaa');
    const again = deriveSshHostKey(Buffer.from(seed), 'sock_aaaaaaaaaaaaaaaa');
    assert.equal(again.publicKey, a.publicKey);
    assert.equal(again.openSshPrivateKey, a.openSshPrivateKey, 'the encoding is a pure function of the key');
    assert.notEqual(deriveSshHostKey(seed, 'sock_bbbbbbbbbbbbbbbb').publicKey, a.publicKey);
    assert.notEqual(deriveSshHostKey(randomBytes(32), 'sock_aaaaaaaaaaaaaaaa').publicKey, a.publicKey);
    assert.match(a.publicKey, /^ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAI[A-Za-z0-9+/]{43}$/, 'authorized_keys form, no comment');
    assert.equal(parseSshPublicKey(a.publicKey).type, 'ssh-ed25519');
    assert.equal(a.privateKey.asymmetricKeyType, 'ed25519');
    const signature = sign(null, Buffer.from('hello'), a.privateKey);
    const raw = parseSshPublicKey(a.publicKey).fields[0]!;
    assert.deepEqual(Buffer.from(createPublicKey(a.privateKey).export({ format: 'jwk' }).x!, 'base64url'), raw, 'publicKey is the private key\'s');
    assert.ok(verify(null, Buffer.from('hello'), createPublicKey(a.privateKey), signature));
  });

  test('a short seed or an empty socket id is refused', () => {
    assert.throws(() => deriveSshHostKey(randomBytes(16), 'sock_a'), (err: unknown) => isPosternError(err, 'config_invalid'));
    assert.throws(() => deriveSshHostKey(seed, ''), (err: unknown) => isPosternError(err, 'bad_request'));
  });

  test('ssh2 parses the OpenSSH private key, and it signs for the public key', () => {
    const key = deriveSshHostKey(seed, 'sock_ssh2');
    const parsed = ssh2.utils.parseKey(key.openSshPrivateKey);
    assert.ok(!(parsed instanceof Error), String(parsed));
    assert.equal(parsed.type, 'ssh-ed25519');
    assert.equal(parsed.isPrivateKey(), true);
    assert.equal(parsed.getPublicSSH().toString('base64'), key.publicKey.split(' ')[1]);
    const signature = parsed.sign(Buffer.from('data'));
    const pub = ssh2.utils.parseKey(key.publicKey);
    assert.ok(!(pub instanceof Error), String(pub));
    assert.equal(pub.verify(Buffer.from('data'), signature), true);
  });

  test('ssh-keygen -y reads the OpenSSH private key and prints the public key', { skip }, async () => {
    const dir = await mkdtemp(join(tmpdir(), 'postern-hostkey-'));
    try {
      const key = deriveSshHostKey(seed, 'sock_keygen');
      const path = join(dir, 'host_key');
      await writeFile(path, key.openSshPrivateKey, { mode: 0o600 });
      const { stdout } = await run('ssh-keygen', ['-y', '-f', path]);
      assert.equal(stdout.trim(), key.publicKey);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});

describe('SSH host certificates', { skip }, () => {
  let dir: string;
  let sshd: Sshd;
  let client: { path: string };
  const userCa = SshCertificateAuthority.fromPrivateKey(SshCertificateAuthority.generateKey());
  const hostCa = SshCertificateAuthority.fromPrivateKey(SshCertificateAuthority.generateKey(), { comment: 'postern-host-ca' });
  const hostKey = deriveSshHostKey(randomBytes(32), 'sock_prod');
  const hostCert = hostCa.sign({ publicKey: hostKey.publicKey, keyId: 'prod', principals: ['prod.localhost'], certType: 'host', validAfter: minutes(-5), validBefore: minutes(60) });

  /** ssh to the test sshd as `alias`, trusting only what `knownHosts` says. */
  const sshWith = async (knownHosts: string, alias: string) => {
    const file = join(dir, `known_hosts_${alias}`);
    await writeFile(file, knownHosts);
    return new Promise<{ code: number; stderr: string; stdout: string }>((resolve) => {
      execFile('ssh', [
        '-i', client.path, '-o', `CertificateFile=${client.path}-cert.pub`, '-o', 'IdentitiesOnly=yes', '-o', 'BatchMode=yes',
        '-o', 'StrictHostKeyChecking=yes', '-o', `UserKnownHostsFile=${file}`, '-o', 'GlobalKnownHostsFile=/dev/null',
        '-o', `HostKeyAlias=${alias}`, '-o', 'LogLevel=ERROR', '-o', 'ConnectTimeout=10', '-p', String(sshd.port),
        `${LOGIN}@127.0.0.1`, 'echo', 'host-verified',
      ], { timeout: 20_000 }, (err, stdout, stderr) => resolve({ code: err ? Number((err as { code?: unknown }).code ?? -1) : 0, stdout, stderr }));
    });
  };

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'postern-hostcert-'));
    sshd = await startSshd(userCa.publicKey(), [LOGIN], { hostKey: hostKey.openSshPrivateKey, hostCertificate: hostCert });
    client = await sshKeyPair(dir, 'client');
    const { publicKey } = client as { path: string; publicKey: string };
    await writeFile(`${client.path}-cert.pub`, userCa.sign({ publicKey, keyId: 'ana', principals: [LOGIN], validAfter: minutes(-5), validBefore: minutes(30) }) + '\n');
  });

  after(async () => {
    await sshd?.stop();
    await rm(dir, { recursive: true, force: true });
  });

  test('ssh-keygen -L shows a host certificate for the name, with no extensions', async () => {
    assert.equal(certTypeOf(hostCert), 2);
    const path = join(dir, 'host-cert.pub');
    await writeFile(path, hostCert + '\n');
    const { stdout } = await run('ssh-keygen', ['-L', '-f', path]);
    assert.match(stdout, /Type: ssh-ed25519-cert-v01@openssh.com host certificate/);
    assert.match(stdout, /Principals: \n\s+prod\.localhost\n/);
    assert.match(stdout, /Extensions: \(none\)/);
    assert.match(stdout, /Critical Options: \(none\)/);
    assert.match(hostCa.publicKey(), /^ssh-ed25519 \S+ postern-host-ca$/);
  });

  test('user certificates stay user certificates with the default extensions', async () => {
    const cert = userCa.sign({ publicKey: hostKey.publicKey, keyId: 'ana', principals: ['ana'], validAfter: minutes(-5), validBefore: minutes(5) });
    assert.equal(certTypeOf(cert), 1);
    assert.equal(certTypeOf(userCa.sign({ publicKey: hostKey.publicKey, keyId: 'ana', principals: ['ana'], certType: 'user', validAfter: minutes(-5), validBefore: minutes(5) })), 1);
    const path = join(dir, 'user-cert.pub');
    await writeFile(path, cert + '\n');
    const { stdout } = await run('ssh-keygen', ['-L', '-f', path]);
    assert.match(stdout, /user certificate/);
    assert.match(stdout, /permit-pty/);
  });

  test('a known_hosts @cert-authority line for *.localhost matches prod.localhost (ssh-keygen -F)', async () => {
    const file = join(dir, 'known_hosts_lookup');
    await writeFile(file, `@cert-authority *.localhost ${hostCa.publicKey()}\n`);
    const { stdout } = await run('ssh-keygen', ['-F', 'prod.localhost', '-f', file]);
    assert.match(stdout, /found: line 1 CA/);
    await assert.rejects(run('ssh-keygen', ['-F', 'prod.example', '-f', file]), 'no line for other domains');
  });

  test('ssh trusts the sshd presenting the host certificate through the @cert-authority line', async () => {
    const trusted = await sshWith(`@cert-authority *.localhost ${hostCa.publicKey()}\n`, 'prod.localhost');
    assert.equal(trusted.code, 0, trusted.stderr);
    assert.equal(trusted.stdout.trim(), 'host-verified');
  });

  test('ssh refuses it under a name the certificate does not carry, or with another CA in known_hosts', async () => {
    const otherName = await sshWith(`@cert-authority *.localhost ${hostCa.publicKey()}\n`, 'staging.localhost');
    assert.notEqual(otherName.code, 0);
    assert.match(otherName.stderr, /Host key verification failed/);
    const otherCa = SshCertificateAuthority.fromPrivateKey(SshCertificateAuthority.generateKey());
    const foreign = await sshWith(`@cert-authority *.localhost ${otherCa.publicKey()}\n`, 'prod.localhost');
    assert.notEqual(foreign.code, 0);
    assert.match(foreign.stderr, /Host key verification failed/);
  });

  test('an unknown certificate type is refused', () => {
    assert.throws(() => hostCa.sign({ publicKey: hostKey.publicKey, keyId: 'x', principals: ['x'], certType: 'server' as 'host', validAfter: minutes(0), validBefore: minutes(1) }), PosternError);
  });
});

describe('sealed SSH host CA and host key seed', () => {
  test('created once, sealed under names of their own, the same on every later load', async () => {
    const secrets = new MemorySecrets();
    const cipher = createKeyCipher(randomBytes(32));
    const hostCa = await loadOrCreateSshHostCa(secrets, cipher);
    const seed = await loadOrCreateSshHostKeySeed(secrets, cipher);
    const userCa = await loadOrCreateSshCa(secrets, cipher);
    assert.match(hostCa.publicKey(), /^ssh-ed25519 \S+ postern-host-ca$/);
    assert.match(userCa.publicKey(), / postern-user-ca$/);
    assert.notEqual(hostCa.publicKey().split(' ')[1], userCa.publicKey().split(' ')[1], 'the host CA is not the user CA');
    assert.equal(seed.length, 32);
    assert.equal(secrets.values.size, 3);
    for (const sealed of secrets.values.values()) assert.ok(!sealed.includes(seed.toString('base64url')) && sealed.startsWith('v1.'), 'stored sealed');
    const writes = secrets.writes;
    assert.equal((await loadOrCreateSshHostCa(secrets, cipher)).publicKey(), hostCa.publicKey());
    assert.deepEqual(await loadOrCreateSshHostKeySeed(secrets, cipher), seed);
    assert.equal(secrets.writes, writes, 'nothing is written again');
  });
});
