// Baselines on private loopback ports: OpenSSH reverse forward (`ssh -N -R`), nginx as a reverse proxy, a plain Node TLS relay.
import { chmodSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { userInfo } from 'node:os';
import { join } from 'node:path';
import { fixture, freePort, makeTempDir, removeTempDir, run, start, waitListening, which } from './proc.js';
import type { Child } from './proc.js';

export interface Baseline {
  port: number;
  note: string;
  stop(): Promise<void>;
}

/** A private sshd plus `ssh -N -R fwd:127.0.0.1:target`; clients connect to the returned port. */
export async function startSshReverse(targetPort: number): Promise<Baseline | string> {
  const sshd = which('sshd');
  const ssh = which('ssh');
  const keygen = which('ssh-keygen');
  if (!sshd || !ssh || !keygen) return 'OpenSSH (sshd/ssh/ssh-keygen) not installed';
  const dir = makeTempDir('postern-bench-ssh-');
  const children: { stop(): Promise<void> }[] = [];
  const stop = async () => {
    for (const c of children.reverse()) await c.stop();
    removeTempDir(dir);
  };
  try {
    for (const [file, type] of [['host_key', 'ed25519'], ['user_key', 'ed25519']] as const) {
      const r = run(keygen, ['-q', '-t', type, '-N', '', '-f', join(dir, file)]);
      if (r.code !== 0) throw new Error(`ssh-keygen failed: ${r.stderr}`);
    }
    writeFileSync(join(dir, 'authorized_keys'), readFileSync(join(dir, 'user_key.pub')), { mode: 0o600 });
    const sshdPort = await freePort();
    const fwdPort = await freePort();
    writeFileSync(join(dir, 'sshd_config'), [
      `Port ${sshdPort}`,
      'ListenAddress 127.0.0.1',
      `HostKey ${join(dir, 'host_key')}`,
      `AuthorizedKeysFile ${join(dir, 'authorized_keys')}`,
      `PidFile ${join(dir, 'sshd.pid')}`,
      'StrictModes no',
      'PermitRootLogin prohibit-password',
      'UsePAM no',
      'PasswordAuthentication no',
      'KbdInteractiveAuthentication no',
      'AllowTcpForwarding yes',
      'LogLevel ERROR',
      '',
    ].join('\n'));
    try {
      mkdirSync('/run/sshd', { recursive: true, mode: 0o755 });
    } catch {
      /* sshd will say what is missing */
    }
    const daemon = start('sshd', sshd, ['-D', '-e', '-f', join(dir, 'sshd_config')]);
    children.push(daemon);
    await waitListening(sshdPort, 10_000, 'sshd', daemon);
    const client = start('ssh -R', ssh, [
      '-N', '-v', '-F', '/dev/null', '-p', String(sshdPort), '-i', join(dir, 'user_key'),
      '-o', 'StrictHostKeyChecking=no', '-o', 'UserKnownHostsFile=/dev/null', '-o', 'ExitOnForwardFailure=yes',
      '-o', 'BatchMode=yes', '-o', 'IdentitiesOnly=yes',
      '-R', `127.0.0.1:${fwdPort}:127.0.0.1:${targetPort}`, `${userInfo().username}@127.0.0.1`,
    ]);
    children.push(client);
    await waitListening(fwdPort, 15_000, 'ssh -R forward', client);
    const cipher = (await client.waitFor(/kex: server->client cipher: (\S+)/, 1_000).catch(() => undefined))?.[1] ?? 'default';
    return { port: fwdPort, note: cipher, stop };
  } catch (err) {
    await stop();
    throw err;
  }
}

/** nginx (one worker) proxying 127.0.0.1:<fresh port> to the upstream with a keep-alive pool. */
export async function startNginx(upstreamPort: number): Promise<Baseline | string> {
  const nginx = which('nginx');
  if (!nginx) return 'nginx not installed';
  const dir = makeTempDir('postern-bench-nginx-');
  chmodSync(dir, 0o755);
  const port = await freePort();
  writeFileSync(join(dir, 'nginx.conf'), `
worker_processes 1;
pid ${dir}/nginx.pid;
error_log ${dir}/error.log warn;
events { worker_connections 4096; }
http {
  access_log off;
  client_body_temp_path ${dir}/body;
  proxy_temp_path ${dir}/proxy;
  fastcgi_temp_path ${dir}/fastcgi;
  uwsgi_temp_path ${dir}/uwsgi;
  scgi_temp_path ${dir}/scgi;
  upstream app { server 127.0.0.1:${upstreamPort}; keepalive 64; }
  server {
    listen 127.0.0.1:${port} backlog=511;
    location / {
      proxy_pass http://app;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
    }
  }
}
`);
  const child = start('nginx', nginx, ['-p', dir, '-c', join(dir, 'nginx.conf'), '-e', join(dir, 'error.log'), '-g', 'daemon off;']);
  const stop = async () => {
    await child.stop();
    removeTempDir(dir);
  };
  try {
    await waitListening(port, 10_000, 'nginx', child);
    const version = run(nginx, ['-v']).stderr.match(/nginx\/(\S+)/)?.[1] ?? '';
    return { port, note: `nginx ${version}`, stop };
  } catch (err) {
    const log = (() => {
      try {
        return readFileSync(join(dir, 'error.log'), 'utf8');
      } catch {
        return '';
      }
    })();
    await stop();
    throw new Error(`${(err as Error).message}\n${log}`);
  }
}

/** A plain Node TLS-terminating relay (P-256 self-signed certificate from the openssl CLI) to 127.0.0.1:target. */
/** With `clientCaFile`, the relay requires client certificates from that CA (mutual TLS). */
export async function startNodeTlsRelay(targetPort: number, nodeArgs: string[] = [], clientCaFile?: string): Promise<(Baseline & { child: Child; dir: string }) | string> {
  const openssl = which('openssl');
  if (!openssl) return 'openssl CLI not installed (needed for its certificate)';
  const dir = makeTempDir('postern-bench-tls-');
  const key = join(dir, 'key.pem');
  const cert = join(dir, 'cert.pem');
  const r = run(openssl, ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', key, '-out', cert, '-subj', '/CN=localhost', '-addext', 'subjectAltName=DNS:localhost', '-days', '1']);
  if (r.code !== 0) {
    removeTempDir(dir);
    return `openssl req failed: ${r.stderr.trim().split('\n')[0]}`;
  }
  const relay = await fixture('tls-relay', [key, cert, targetPort, ...(clientCaFile ? [clientCaFile] : [])], true, nodeArgs);
  return {
    port: relay.port,
    child: relay.child,
    dir,
    note: `node ${process.version} ${clientCaFile ? 'mutual ' : ''}tls relay`,
    stop: async () => {
      await relay.child.stop();
      removeTempDir(dir);
    },
  };
}
