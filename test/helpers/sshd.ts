// A private OpenSSH server on a loopback port for tests: its own host key, config and
// certificate trust (TrustedUserCAKeys + AuthorizedPrincipalsFile), killed by `stop()`.
import { execFile, spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import net from 'node:net';
import { tmpdir, userInfo } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { freePort, waitFor } from './util.js';

const run = promisify(execFile);
export const SSHD = '/usr/sbin/sshd';
export const haveOpenSsh = existsSync(SSHD) && existsSync('/usr/bin/ssh') && existsSync('/usr/bin/ssh-keygen');
/** The local account the tests log in as (root in CI). */
export const LOGIN = userInfo().username;

export interface Sshd {
  readonly port: number;
  readonly dir: string;
  stop(): Promise<void>;
}

export interface SshdOptions {
  /** An OpenSSH private key to serve as the host key instead of a fresh one. */
  readonly hostKey?: string;
  /** A host certificate for that key (sshd's HostCertificate). */
  readonly hostCertificate?: string;
}

/** `principals`: who may log in as LOGIN (AuthorizedPrincipalsFile). */
export async function startSshd(caPublicKey: string, principals: readonly string[], options: SshdOptions = {}): Promise<Sshd> {
  const dir = await mkdtemp(join(tmpdir(), 'postern-sshd-'));
  await writeFile(join(dir, 'ca.pub'), caPublicKey.trim() + '\n');
  await writeFile(join(dir, `principals_${LOGIN}`), principals.join('\n') + '\n');
  if (options.hostKey === undefined) await run('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-f', join(dir, 'host_key')]);
  else await writeFile(join(dir, 'host_key'), options.hostKey, { mode: 0o600 });
  if (options.hostCertificate !== undefined) await writeFile(join(dir, 'host_key-cert.pub'), options.hostCertificate.trim() + '\n');
  await mkdir('/run/sshd', { recursive: true }).catch(() => undefined);
  const port = await freePort();
  await writeFile(join(dir, 'sshd_config'), [
    `Port ${port}`, 'ListenAddress 127.0.0.1', `HostKey ${join(dir, 'host_key')}`, `PidFile ${join(dir, 'sshd.pid')}`,
    'UsePAM no', 'StrictModes no', 'PasswordAuthentication no', 'KbdInteractiveAuthentication no', 'PermitRootLogin prohibit-password',
    'AuthorizedKeysFile none', `TrustedUserCAKeys ${join(dir, 'ca.pub')}`, `AuthorizedPrincipalsFile ${join(dir, 'principals_%u')}`,
    ...(options.hostCertificate === undefined ? [] : [`HostCertificate ${join(dir, 'host_key-cert.pub')}`]),
  ].join('\n') + '\n');
  const child = spawn(SSHD, ['-D', '-e', '-f', join(dir, 'sshd_config')], { stdio: ['ignore', 'ignore', 'pipe'] });
  await waitFor(() => new Promise<boolean>((resolve) => {
    const probe = net.connect(port, '127.0.0.1');
    probe.once('connect', () => (probe.destroy(), resolve(true))).once('error', () => resolve(false));
  }), { timeoutMs: 10_000, what: `sshd on :${port}` });
  return {
    port,
    dir,
    stop: async () => {
      child.kill('SIGKILL');
      await rm(dir, { recursive: true, force: true });
    },
  };
}

/** A fresh key pair made by ssh-keygen in `dir`. */
export async function sshKeyPair(dir: string, name: string, type = 'ed25519'): Promise<{ path: string; publicKey: string }> {
  const path = join(dir, name);
  await run('ssh-keygen', ['-q', '-t', type, '-N', '', '-C', name, '-f', path]);
  return { path, publicKey: await readFile(`${path}.pub`, 'utf8') };
}

export interface SshResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Runs `ssh … LOGIN@host command` with a key, its certificate and extra -o options. */
export function ssh(key: string, host: string, options: readonly string[], command: readonly string[]): Promise<SshResult> {
  return new Promise((resolve) => {
    execFile('ssh', ['-i', key, '-o', `CertificateFile=${key}-cert.pub`, '-o', 'IdentitiesOnly=yes', '-o', 'BatchMode=yes',
      '-o', 'StrictHostKeyChecking=no', '-o', 'UserKnownHostsFile=/dev/null', '-o', 'LogLevel=ERROR', '-o', 'ConnectTimeout=10',
      ...options, `${LOGIN}@${host}`, ...command], { timeout: 20_000 }, (err, stdout, stderr) => {
      resolve({ code: err ? (typeof (err as { code?: unknown }).code === 'number' ? (err as { code: number }).code : -1) : 0, stdout, stderr });
    });
  });
}
