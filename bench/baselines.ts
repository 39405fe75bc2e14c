// Baselines on private loopback ports: OpenSSH reverse forward (`ssh -N -R`), nginx as a reverse proxy (plain or terminating TLS), stunnel requiring client certificates, a plain Node TLS relay.
import { chmodSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { userInfo } from 'node:os';
import { join } from 'node:path';
import { fixture, freePort, makeTempDir, removeTempDir, run, start, waitListening, which } from './proc.js';
import type { Child } from './proc.js';
import type { Report } from './report.js';

export interface Baseline {
  port: number;
  note: string;
  /** The self-signed certificate a TLS-terminating baseline presents (PEM), for clients that verify it. */
  certPem?: string;
  stop(): Promise<void>;
}

/** Starts a baseline, or notes why it is skipped; registers its cleanup. */
export async function optionalBaseline(report: Report, cleanups: (() => Promise<void>)[], label: string, startIt: () => Promise<Baseline | string>): Promise<Baseline | undefined> {
  const b = await startIt().catch((err: Error) => `failed to start: ${err.message.split('\n')[0]}`);
  if (typeof b === 'string') {
    report.note(`${label} baseline skipped: ${b}`);
    return undefined;
  }
  cleanups.push(b.stop);
  return b;
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

/** A self-signed P-256 certificate for `localhost` (openssl CLI) in `dir`: what a VPS baseline terminates TLS with. */
export function selfSignedCertificate(dir: string): { key: string; cert: string } | string {
  const openssl = which('openssl');
  if (!openssl) return 'openssl CLI not installed (needed for its certificate)';
  const key = join(dir, 'key.pem');
  const cert = join(dir, 'cert.pem');
  const r = run(openssl, ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', key, '-out', cert, '-subj', '/CN=localhost', '-addext', 'subjectAltName=DNS:localhost', '-days', '1']);
  return r.code === 0 ? { key, cert } : `openssl req failed: ${r.stderr.trim().split('\n')[0]}`;
}

function readLog(file: string): string {
  try {
    return readFileSync(file, 'utf8');
  } catch {
    return '';
  }
}

/**
 * nginx proxying 127.0.0.1:<fresh port> to the upstream with a keep-alive pool.
 * With `tls`, it terminates TLS with a self-signed P-256 certificate, as a VPS in front of `ssh -R` would (Debian's `worker_processes auto`);
 * without, it is the plain one-worker proxy.
 */
export async function startNginx(upstreamPort: number, options: { tls?: boolean } = {}): Promise<Baseline | string> {
  const nginx = which('nginx');
  if (!nginx) return 'nginx not installed';
  const dir = makeTempDir('postern-bench-nginx-');
  chmodSync(dir, 0o755);
  const cert = options.tls ? selfSignedCertificate(dir) : undefined;
  if (typeof cert === 'string') {
    removeTempDir(dir);
    return cert;
  }
  const port = await freePort();
  const listen = cert
    ? [`listen 127.0.0.1:${port} ssl backlog=511;`, `ssl_certificate ${cert.cert};`, `ssl_certificate_key ${cert.key};`, 'ssl_protocols TLSv1.2 TLSv1.3;', 'ssl_session_cache shared:SSL:1m;']
    : [`listen 127.0.0.1:${port} backlog=511;`];
  writeFileSync(join(dir, 'nginx.conf'), `
worker_processes ${cert ? 'auto' : '1'};
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
    ${listen.join('\n    ')}
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
    return { port, note: `nginx ${version}${cert ? ' (TLS, worker_processes auto)' : ' (1 worker)'}`, stop, ...(cert ? { certPem: readFileSync(cert.cert, 'utf8') } : {}) };
  } catch (err) {
    const log = readLog(join(dir, 'error.log'));
    await stop();
    throw new Error(`${(err as Error).message}\n${log}`);
  }
}

/** stunnel (Debian's stunnel4) terminating TLS on 127.0.0.1:<fresh port>, requiring a client certificate from `clientCaFile`, forwarding to the target. */
export async function startStunnel(targetPort: number, clientCaFile: string): Promise<Baseline | string> {
  const stunnel = which('stunnel4') ?? which('stunnel');
  if (!stunnel) return 'stunnel4 not installed';
  const dir = makeTempDir('postern-bench-stunnel-');
  const cert = selfSignedCertificate(dir);
  if (typeof cert === 'string') {
    removeTempDir(dir);
    return cert;
  }
  const port = await freePort();
  writeFileSync(join(dir, 'stunnel.conf'), [
    'foreground = yes',
    `pid = ${join(dir, 'stunnel.pid')}`,
    'syslog = no',
    'debug = 4',
    'socket = l:TCP_NODELAY=1',
    'socket = r:TCP_NODELAY=1',
    '[relay]',
    `accept = 127.0.0.1:${port}`,
    `connect = 127.0.0.1:${targetPort}`,
    `cert = ${cert.cert}`,
    `key = ${cert.key}`,
    `CAfile = ${clientCaFile}`,
    'requireCert = yes',
    'verifyChain = yes',
    '',
  ].join('\n'));
  const child = start('stunnel', stunnel, [join(dir, 'stunnel.conf')]);
  const stop = async () => {
    await child.stop();
    removeTempDir(dir);
  };
  try {
    await waitListening(port, 10_000, 'stunnel', child);
    const version = child.tail().match(/stunnel (\d\S*)/)?.[1] ?? '';
    return { port, note: `stunnel ${version}`.trim(), stop, certPem: readFileSync(cert.cert, 'utf8') };
  } catch (err) {
    await stop();
    throw err;
  }
}

/** A plain Node TLS-terminating relay (P-256 self-signed certificate from the openssl CLI) to 127.0.0.1:target. */
/** With `clientCaFile`, the relay requires client certificates from that CA (mutual TLS). */
export async function startNodeTlsRelay(targetPort: number, nodeArgs: string[] = [], clientCaFile?: string): Promise<(Baseline & { child: Child; dir: string }) | string> {
  const dir = makeTempDir('postern-bench-tls-');
  const cert = selfSignedCertificate(dir);
  if (typeof cert === 'string') {
    removeTempDir(dir);
    return cert;
  }
  const relay = await fixture('tls-relay', [cert.key, cert.cert, targetPort, ...(clientCaFile ? [clientCaFile] : [])], true, nodeArgs);
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

/** The Node reverse proxy of bench/fixture.ts terminating TLS itself (self-signed P-256), as Postern's edge does. */
export async function startNodeHttpsProxy(upstreamPort: number): Promise<Baseline | string> {
  const dir = makeTempDir('postern-bench-https-');
  const cert = selfSignedCertificate(dir);
  if (typeof cert === 'string') {
    removeTempDir(dir);
    return cert;
  }
  const proxy = await fixture('http-proxy', [upstreamPort, cert.key, cert.cert]);
  return {
    port: proxy.port,
    note: `node ${process.version} https proxy`,
    certPem: readFileSync(cert.cert, 'utf8'),
    stop: async () => {
      await proxy.child.stop();
      removeTempDir(dir);
    },
  };
}
