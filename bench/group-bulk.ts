// Bench group "bulk": 1 GiB downloads direct, via Node TCP/TLS relays, via ssh -R, and through Postern (TCP stream and HTTPS).
import { downloadHttp, downloadTcp } from './clients.js';
import type { Download } from './clients.js';
import { startNodeTlsRelay, startSshReverse } from './baselines.js';
import { startPostern } from './postern.js';
import { fixture } from './proc.js';
import type { Report } from './report.js';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';

const GIB = 1024 ** 3;
const ROUNDS = 2;

export async function benchBulk(report: Report, cleanups: (() => Promise<void>)[]): Promise<void> {
  const source = await fixture('tcp-source', [GIB]);
  const web = await fixture('http-upstream', [GIB]);
  const relay = await fixture('tcp-relay', [source.port]);
  cleanups.push(() => source.child.stop(), () => web.child.stop(), () => relay.child.stop());

  const tlsRelay = await startNodeTlsRelay(source.port);
  if (typeof tlsRelay === 'string') report.note(`bulk: node_tls_relay baseline skipped: ${tlsRelay}`);
  else cleanups.push(tlsRelay.stop);

  const ssh = await startSshReverse(source.port).catch((err: Error) => `ssh -R failed to start: ${err.message}`);
  if (typeof ssh === 'string') report.note(`bulk: ssh -R baseline skipped: ${ssh}`);
  else cleanups.push(ssh.stop);

  const postern = await startPostern([
    { name: 'bulk', type: 'http', upstream: `http://127.0.0.1:${web.port}` },
    { name: 'stream', type: 'tls', upstream: `tcp://127.0.0.1:${source.port}` },
  ]);
  cleanups.push(postern.stop);

  const cases: [string, () => Promise<Download>][] = [
    ['direct_tcp', () => downloadTcp(source.port, GIB)],
    ['node_relay', () => downloadTcp(relay.port, GIB)],
    ...(typeof tlsRelay === 'string' ? [] : [['node_tls_relay', () => downloadTcp(tlsRelay.port, GIB, { servername: 'localhost', ca: readFileSync(join(tlsRelay.dir, 'cert.pem'), 'utf8') })] as [string, () => Promise<Download>]]),
    ...(typeof ssh === 'string' ? [] : [['ssh_r', () => downloadTcp(ssh.port, GIB)] as [string, () => Promise<Download>]]),
    ['postern_tcp_stream', () => downloadTcp(postern.port, GIB, { servername: 'stream.localhost', ca: postern.caPem, ...postern.client })],
    ['direct_http', () => downloadHttp(web.port, '/bytes', GIB)],
    ['postern_https', () => downloadHttp(postern.port, '/bytes', GIB, { servername: 'bulk.localhost', ca: postern.caPem })],
  ];
  const best = new Map<string, number>();
  const failed = new Set<string>();
  for (let round = 1; round <= ROUNDS; round++) {
    for (const [name, runOnce] of cases) {
      if (failed.has(name)) continue;
      try {
        const d = await runOnce();
        console.log(`  bulk ${name} run ${round}: ${d.mbps.toFixed(0)} MB/s (${d.seconds.toFixed(2)} s)`);
        best.set(name, Math.max(best.get(name) ?? 0, d.mbps));
      } catch (err) {
        failed.add(name);
        report.note(`bulk: ${name} run ${round} FAILED: ${(err as Error).message.split('\n')[0]}`);
      }
    }
  }
  if (typeof ssh !== 'string') report.note(`bulk: ssh -R used its default cipher ${ssh.note}`);
  report.note('bulk: node_relay = plain Node TCP relay; node_tls_relay = plain Node relay terminating TLS from the client (one TLS hop; Postern has two: client↔edge and the tunnel)');
  report.note(`bulk: each figure is the best of ${ROUNDS} runs of 1 GiB, MB = 10^6 bytes, timed first byte → last byte`);

  const get = (name: string) => best.get(name);
  const direct = get('direct_tcp');
  if (direct !== undefined) report.figure('bulk.direct_tcp', direct, 'MB/s');
  for (const name of ['node_relay', 'node_tls_relay', 'ssh_r']) {
    const v = get(name);
    if (v !== undefined && direct !== undefined) report.compare(`bulk.${name}`, v, 'MB/s', 'direct_tcp', direct);
  }
  const directHttp = get('direct_http');
  if (directHttp !== undefined) report.figure('bulk.direct_http', directHttp, 'MB/s');
  const targets: Record<string, number> = { postern_tcp_stream: 1.2, postern_https: 1.0 };
  for (const name of ['postern_tcp_stream', 'postern_https']) {
    const v = get(name);
    if (v === undefined) continue;
    const baselines: [string, number | undefined][] = [['direct_tcp', direct], ['node_relay', get('node_relay')], ['node_tls_relay', get('node_tls_relay')], ['ssh_r', get('ssh_r')]];
    if (name === 'postern_https') baselines.push(['direct_http', directHttp]);
    for (const [base, bv] of baselines) {
      if (bv === undefined) continue;
      const want = targets[name]!;
      report.compare(`bulk.${name}`, v, 'MB/s', base, bv, base === 'ssh_r' ? { text: `>= ${want.toFixed(1)}x ssh -R`, pass: (r) => r >= want } : undefined);
    }
  }
}
