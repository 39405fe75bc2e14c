// Bench group "bulk": 512 MiB downloads direct, via Node TCP/TLS relays, via ssh -R (plain, behind stunnel, behind nginx) and through Postern (tls socket and HTTPS socket), in interleaved rounds.
import { downloadHttp, downloadTcp } from './clients.js';
import type { Download } from './clients.js';
import { optionalBaseline, startNginx, startNodeTlsRelay, startSshReverse, startStunnel } from './baselines.js';
import { startPostern } from './postern.js';
import { fixture } from './proc.js';
import type { Report } from './report.js';
import { interleave, median, spread } from './rounds.js';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';

const BYTES = 512 * 1024 ** 2;

export async function benchBulk(report: Report, cleanups: (() => Promise<void>)[], rounds: number): Promise<void> {
  const source = await fixture('tcp-source', [BYTES]);
  const web = await fixture('http-upstream', [BYTES]);
  const relay = await fixture('tcp-relay', [source.port]);
  cleanups.push(() => source.child.stop(), () => web.child.stop(), () => relay.child.stop());
  const postern = await startPostern([
    { name: 'bulk', type: 'http', upstream: `http://127.0.0.1:${web.port}` },
    { name: 'stream', type: 'tls', upstream: `tcp://127.0.0.1:${source.port}` },
  ]);
  cleanups.push(postern.stop);

  const tlsRelay = await startNodeTlsRelay(source.port);
  if (typeof tlsRelay === 'string') report.note(`bulk: node_tls_relay baseline skipped: ${tlsRelay}`);
  else cleanups.push(tlsRelay.stop);
  // What a user would script on a VPS: ssh -R from the private host, and a C TLS terminator in front of the forwarded port.
  const ssh = await optionalBaseline(report, cleanups, 'bulk: ssh_r', () => startSshReverse(source.port));
  const stunnel = ssh && await optionalBaseline(report, cleanups, 'bulk: stunnel_ssh_r', () => startStunnel(ssh.port, postern.caFile));
  const sshWeb = await optionalBaseline(report, cleanups, 'bulk: nginx_tls_ssh_r (its ssh -R)', () => startSshReverse(web.port));
  const nginx = sshWeb && await optionalBaseline(report, cleanups, 'bulk: nginx_tls_ssh_r', () => startNginx(sshWeb.port, { tls: true }));

  type Case = readonly [string, () => Promise<Download>];
  const cases: Case[] = [
    ['direct_tcp', () => downloadTcp(source.port, BYTES)],
    ['node_relay', () => downloadTcp(relay.port, BYTES)],
    ...(typeof tlsRelay === 'string' ? [] : [['node_tls_relay', () => downloadTcp(tlsRelay.port, BYTES, { servername: 'localhost', ca: readFileSync(join(tlsRelay.dir, 'cert.pem'), 'utf8') })] as Case]),
    ...(ssh ? [['ssh_r', () => downloadTcp(ssh.port, BYTES)] as Case] : []),
    ...(stunnel ? [['stunnel_ssh_r', () => downloadTcp(stunnel.port, BYTES, { servername: 'localhost', ca: stunnel.certPem!, ...postern.client })] as Case] : []),
    ['postern_tcp_stream', () => downloadTcp(postern.port, BYTES, { servername: 'stream.localhost', ca: postern.caPem, ...postern.client })],
    ['direct_http', () => downloadHttp(web.port, '/bytes', BYTES)],
    ...(nginx ? [['nginx_tls_ssh_r', () => downloadHttp(nginx.port, '/bytes', BYTES, { servername: 'localhost', ca: nginx.certPem! })] as Case] : []),
    ['postern_https', () => downloadHttp(postern.port, '/bytes', BYTES, { servername: 'bulk.localhost', ca: postern.caPem })],
  ];
  const results = await interleave(rounds, cases,
    (name, round, d) => console.log(`  bulk ${name} round ${round}: ${d.mbps.toFixed(0)} MB/s (${d.seconds.toFixed(2)} s)`),
    (name, round, err) => report.note(`bulk: ${name} round ${round} FAILED: ${err.message.split('\n')[0]}`));
  const rates = (name: string) => results.get(name)?.runs.map((d) => d.mbps) ?? [];
  const get = (name: string) => (rates(name).length > 0 ? median(rates(name)) : undefined);

  if (ssh) report.note(`bulk: ssh -R used its default cipher ${ssh.note}; stunnel_ssh_r = ${stunnel?.note ?? 'stunnel'} requiring a client certificate (Postern's CA, the same client certificate) in front of that ssh -R; nginx_tls_ssh_r = ${nginx?.note ?? 'nginx'} terminating HTTPS in front of a second ssh -R`);
  report.note('bulk: node_relay = plain Node TCP relay; node_tls_relay = plain Node relay terminating TLS from the client (one TLS hop; Postern has two: client↔edge and the tunnel)');
  report.note(`bulk: each figure is the median of ${rounds} interleaved rounds of 512 MiB, MB = 10^6 bytes, timed first byte → last byte; spread (max/min over rounds): ${cases.map(([name]) => `${name} ${spread(rates(name)).toFixed(2)}`).join(', ')}`);

  const direct = get('direct_tcp');
  if (direct !== undefined) report.figure('bulk.direct_tcp', direct, 'MB/s');
  for (const name of ['node_relay', 'node_tls_relay', 'ssh_r', 'stunnel_ssh_r']) {
    const v = get(name);
    if (v !== undefined && direct !== undefined) report.compare(`bulk.${name}`, v, 'MB/s', 'direct_tcp', direct);
  }
  const directHttp = get('direct_http');
  if (directHttp !== undefined) report.figure('bulk.direct_http', directHttp, 'MB/s');
  const nginxRate = get('nginx_tls_ssh_r');
  if (nginxRate !== undefined && directHttp !== undefined) report.compare('bulk.nginx_tls_ssh_r', nginxRate, 'MB/s', 'direct_http', directHttp);

  const atLeast = (k: number, what: string) => ({ text: `>= ${k.toFixed(1)}x ${what}`, pass: (r: number) => r >= k });
  const compareAll = (name: string, baselines: [string, { text: string; pass: (r: number) => boolean }?][]) => {
    const v = get(name);
    if (v === undefined) return;
    for (const [base, target] of baselines) {
      const bv = get(base);
      if (bv !== undefined) report.compare(`bulk.${name}`, v, 'MB/s', base, bv, target);
    }
  };
  compareAll('postern_tcp_stream', [['stunnel_ssh_r', atLeast(1.0, 'stunnel+ssh -R')], ['ssh_r', atLeast(1.2, 'ssh -R')], ['direct_tcp'], ['node_relay'], ['node_tls_relay']]);
  compareAll('postern_https', [['nginx_tls_ssh_r', atLeast(1.0, 'nginx+ssh -R')], ['direct_http'], ['ssh_r']]);
}
