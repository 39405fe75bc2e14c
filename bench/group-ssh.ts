// Bench group "ssh": time to the first shell prompt (ssh -tt on a pty) and scp of 256 MiB through a managed
// `ssh` socket, beside the same through a plain `tls` socket and direct to the sshd, in interleaved rounds.
import { randomBytes } from 'node:crypto';
import { closeSync, openSync, readFileSync, rmSync, statSync, writeFileSync, writeSync } from 'node:fs';
import https from 'node:https';
import { userInfo } from 'node:os';
import { join } from 'node:path';
import { posternCli, startPostern } from './postern.js';
import type { Postern } from './postern.js';
import { freePort, makeTempDir, removeTempDir, run, runAsync, start, waitListening, which } from './proc.js';
import type { Report } from './report.js';
import { interleave, median, spread } from './rounds.js';

const BYTES = 256 * 1024 ** 2;
/** Logins per round for the first-prompt figure (its median): one login is ~a third of a second, noisy alone. */
const LOGINS = 5;
const LOGIN = userInfo().username;
const MB = 1e6;
/** A shell prompt at the end of what the terminal showed (`root@host:~# `), escape sequences after it ignored. */
const PROMPT = /[#$%>] (?:\u001b\[[0-9;?]*[a-zA-Z])*$/;

interface Target {
  /** ssh/scp options and the host to give them. */
  options: string[];
  host: string;
}

/** A private sshd on `port` that takes the bench key (direct and through the tls socket) and certificates from Postern's user CA naming the login (the managed socket). */
async function startSshd(port: number, userCaKey: string): Promise<{ dir: string; key: string; stop(): Promise<void> }> {
  const dir = makeTempDir('postern-bench-sshd-');
  for (const file of ['host_key', 'user_key']) {
    const r = run('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-f', join(dir, file)]);
    if (r.code !== 0) throw new Error(`ssh-keygen failed: ${r.stderr}`);
  }
  writeFileSync(join(dir, 'authorized_keys'), readFileSync(join(dir, 'user_key.pub')), { mode: 0o600 });
  writeFileSync(join(dir, 'user_ca.pub'), `${userCaKey.trim()}\n`);
  writeFileSync(join(dir, `principals_${LOGIN}`), `${LOGIN}\n`);
  writeFileSync(join(dir, 'sshd_config'), [
    `Port ${port}`, 'ListenAddress 127.0.0.1', `HostKey ${join(dir, 'host_key')}`, `PidFile ${join(dir, 'sshd.pid')}`,
    'StrictModes no', 'PermitRootLogin prohibit-password', 'UsePAM no', 'PasswordAuthentication no', 'KbdInteractiveAuthentication no',
    `AuthorizedKeysFile ${join(dir, 'authorized_keys')}`, `TrustedUserCAKeys ${join(dir, 'user_ca.pub')}`, `AuthorizedPrincipalsFile ${join(dir, 'principals_%u')}`,
    'Subsystem sftp internal-sftp', 'LogLevel ERROR', '',
  ].join('\n'));
  const daemon = start('sshd', which('sshd')!, ['-D', '-e', '-f', join(dir, 'sshd_config')]);
  const stop = async () => {
    await daemon.stop();
    removeTempDir(dir);
  };
  try {
    await waitListening(port, 10_000, 'sshd', daemon);
  } catch (err) {
    await stop();
    throw err;
  }
  return { dir, key: join(dir, 'user_key'), stop };
}


/** `GET /api/v1/ssh/host-ca` (no auth): the known_hosts line that trusts every socket's host certificate. */
function hostCaKnownHosts(postern: Postern): Promise<string> {
  return new Promise((resolve, reject) => {
    const req = https.get({ host: '127.0.0.1', port: postern.port, servername: 'localhost', path: '/api/v1/ssh/host-ca', ca: postern.caPem, agent: false, headers: { host: `localhost:${postern.port}` } }, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => (text += chunk));
      res.on('end', () => (res.statusCode === 200 ? resolve((JSON.parse(text) as { known_hosts: string }).known_hosts) : reject(new Error(`host-ca: ${res.statusCode} ${text}`))));
    });
    req.setTimeout(10_000, () => req.destroy(new Error('host-ca: no answer within 10 s')));
    req.on('error', reject);
  });
}

const quote = (arg: string) => `'${arg.replace(/'/g, `'\\''`)}'`;

/** Milliseconds from starting `ssh -tt` on a fresh pty (util-linux script) to the shell prompt on its screen; then logs out. */
function timeToPrompt(target: Target): Promise<number> {
  const command = ['ssh', '-tt', ...target.options, `${LOGIN}@${target.host}`].map(quote).join(' ');
  return new Promise((resolve, reject) => {
    const t0 = process.hrtime.bigint();
    const child = start('ssh -tt', 'script', ['-qfec', `stty cols 100 rows 30; exec ${command}`, '/dev/null'], { env: { ...process.env, TERM: 'xterm-256color' } });
    let screen = '';
    let ms: number | undefined;
    const timer = setTimeout(() => void child.stop(1_000), 30_000);
    child.proc.stdout!.on('data', (chunk: Buffer) => {
      screen += chunk.toString('utf8');
      if (ms === undefined && PROMPT.test(screen)) {
        ms = Number(process.hrtime.bigint() - t0) / 1e6;
        child.proc.stdin!.write('exit\r');
      }
    });
    void child.exited.then((code) => {
      clearTimeout(timer);
      if (ms !== undefined) resolve(ms);
      else reject(new Error(`ssh -tt ${target.host}: no prompt (exit ${code}); screen: ${JSON.stringify(screen.slice(-300))}`));
    });
  });
}

/** Median of `LOGINS` logins, one after the other. */
async function firstPrompt(target: Target): Promise<number> {
  const times: number[] = [];
  for (let i = 0; i < LOGINS; i++) times.push(await timeToPrompt(target));
  return median(times);
}

/** scp (its default, the sftp protocol) of the file to the sshd's directory; MB/s over the whole command, login included. */
async function scpUpload(target: Target, file: string, remote: string): Promise<number> {
  const t0 = process.hrtime.bigint();
  const r = await runAsync('scp', ['-q', ...target.options, file, `${LOGIN}@${target.host}:${remote}`], 120_000);
  const seconds = Number(process.hrtime.bigint() - t0) / 1e9;
  try {
    if (r.code !== 0) throw new Error(`scp to ${target.host} failed (${r.code}): ${r.stderr.trim().slice(-300)}`);
    const size = statSync(remote).size;
    if (size !== BYTES) throw new Error(`scp to ${target.host}: ${size} bytes arrived, not ${BYTES}`);
    return BYTES / MB / seconds;
  } finally {
    rmSync(remote, { force: true });
  }
}

export async function benchSsh(report: Report, cleanups: (() => Promise<void>)[], rounds: number): Promise<void> {
  const missing = ['sshd', 'ssh', 'scp', 'ssh-keygen', 'script', 'openssl'].filter((tool) => !which(tool));
  if (missing.length > 0) {
    report.note(`ssh: group skipped: ${missing.join(', ')} not installed (apt-get install openssh-server openssh-client util-linux openssl)`);
    return;
  }
  const sshdPort = await freePort();
  const upstream = `tcp://127.0.0.1:${sshdPort}`;
  // The connector dials the upstream per connection, so the sshd may start after it, once it knows the user CA.
  const postern = await startPostern([{ name: 'sshtls', type: 'tls', upstream }, { name: 'sshm', type: 'ssh', upstream }]);
  cleanups.push(postern.stop);
  const shown = JSON.parse(posternCli(postern.env, ['socket', 'show', 'sshm', '--json'])) as { ssh: { publicKey: string } };
  const sshd = await startSshd(sshdPort, shown.ssh.publicKey);
  cleanups.push(sshd.stop);
  const work = makeTempDir('postern-bench-scp-');
  cleanups.push(async () => removeTempDir(work));
  const policy = join(work, 'policy.yaml');
  writeFileSync(policy, `name: bench-ssh\nsockets: [sshm]\nrules:\n  - effect: allow\n    what: { ssh: { logins: [${LOGIN}], shell: true, exec: true, sftp: true, scp: true } }\n`);
  posternCli(postern.env, ['policy', 'apply', '-f', policy]);
  const knownHosts = join(work, 'known_hosts');
  writeFileSync(knownHosts, `${(await hostCaKnownHosts(postern)).trim()}\n`);

  const file = join(work, 'payload.bin');
  const fd = openSync(file, 'w');
  for (let written = 0; written < BYTES; written += 16 * 1024 ** 2) writeSync(fd, randomBytes(16 * 1024 ** 2));
  closeSync(fd);

  const base = ['-F', '/dev/null', '-o', 'BatchMode=yes', '-o', 'LogLevel=ERROR', '-o', 'ConnectTimeout=10'];
  const withKey = ['-i', sshd.key, '-o', 'IdentitiesOnly=yes', '-o', 'StrictHostKeyChecking=no', '-o', 'UserKnownHostsFile=/dev/null'];
  const proxy = ['-o', `ProxyCommand=openssl s_client -quiet -verify_quiet -verify_return_error -connect 127.0.0.1:${postern.port} -servername %h `
    + `-CAfile ${postern.caFile} -cert ${postern.clientFiles.cert} -key ${postern.clientFiles.key}`];
  const targets: Record<'direct' | 'tls_socket' | 'managed', Target> = {
    direct: { options: [...base, ...withKey, '-o', `Port=${sshdPort}`], host: '127.0.0.1' },
    // ssh end to end: Postern relays the bytes and the sshd checks the bench key.
    tls_socket: { options: [...base, ...withKey, ...proxy], host: 'sshtls.localhost' },
    // No key: the TLS client certificate is the identity; the host certificate is checked against the host CA.
    managed: { options: [...base, ...proxy, '-o', `UserKnownHostsFile=${knownHosts}`, '-o', 'StrictHostKeyChecking=yes'], host: 'sshm.localhost' },
  };
  const names = Object.keys(targets) as (keyof typeof targets)[];
  const remote = join(sshd.dir, 'upload.bin');

  const prompts = await interleave(rounds, names.map((name) => [name, () => firstPrompt(targets[name])] as const),
    (name, round, ms) => console.log(`  ssh first_prompt ${name} round ${round}: ${ms.toFixed(0)} ms (median of ${LOGINS})`),
    (name, round, err) => report.note(`ssh: first_prompt ${name} round ${round} FAILED: ${err.message.split('\n')[0]}`));
  const copies = await interleave(rounds, names.map((name) => [name, () => scpUpload(targets[name], file, remote)] as const),
    (name, round, mbps) => console.log(`  ssh scp ${name} round ${round}: ${mbps.toFixed(0)} MB/s`),
    (name, round, err) => report.note(`ssh: scp ${name} round ${round} FAILED: ${err.message.split('\n')[0]}`));
  const get = (results: Map<string, { runs: number[] }>, name: string) => {
    const runs = results.get(name)?.runs ?? [];
    return runs.length > 0 ? median(runs) : undefined;
  };

  const [directMs, tlsMs, managedMs] = names.map((name) => get(prompts, name));
  if (directMs !== undefined) report.figure('ssh.first_prompt_direct', directMs, 'ms');
  if (tlsMs !== undefined && directMs !== undefined) report.compare('ssh.first_prompt_tls_socket', tlsMs, 'ms', 'direct', directMs);
  if (managedMs !== undefined) {
    if (tlsMs !== undefined) report.compare('ssh.first_prompt_managed', managedMs, 'ms', 'tls_socket', tlsMs, { text: '<= 1.5x tls socket', pass: (r) => r <= 1.5 });
    if (directMs !== undefined) report.compare('ssh.first_prompt_managed', managedMs, 'ms', 'direct', directMs);
  }
  const [directRate, tlsRate, managedRate] = names.map((name) => get(copies, name));
  if (directRate !== undefined) report.figure('ssh.scp_direct', directRate, 'MB/s');
  if (tlsRate !== undefined && directRate !== undefined) report.compare('ssh.scp_tls_socket', tlsRate, 'MB/s', 'direct', directRate);
  if (managedRate !== undefined) {
    if (tlsRate !== undefined) report.compare('ssh.scp_managed', managedRate, 'MB/s', 'tls_socket', tlsRate, { text: '>= 0.5x tls socket', pass: (r) => r >= 0.5 });
    if (directRate !== undefined) report.compare('ssh.scp_managed', managedRate, 'MB/s', 'direct', directRate);
  }
  report.note(`ssh: first_prompt = ssh -tt on a pty (util-linux script) until the shell prompt shows, each round the median of ${LOGINS} logins; tls_socket and managed both run openssl s_client as the ProxyCommand with the bench user's client certificate; spread (max/min over rounds): ${names.map((n) => `${n} ${spread(prompts.get(n)?.runs ?? []).toFixed(2)}`).join(', ')}`);
  report.note(`ssh: scp = 256 MiB of random bytes with scp's default (sftp) protocol and cipher into a file beside the sshd, timed over the whole command (login included); MB = 10^6 bytes; the managed socket decrypts, decides and audits every sftp write at the edge and encrypts again to the sshd; spread: ${names.map((n) => `${n} ${spread(copies.get(n)?.runs ?? []).toFixed(2)}`).join(', ')}`);
}
