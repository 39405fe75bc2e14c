// Bench groups "connections" (new tunneled connections per second) and "memory" (RSS per idle tunneled connection).
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { connectionRate } from './clients.js';
import type { RateResult, TlsTarget } from './clients.js';
import { optionalBaseline, startNodeTlsRelay, startSshReverse, startStunnel } from './baselines.js';
import { INSPECT_ARG, collectGarbage } from './inspector.js';
import { startPostern } from './postern.js';
import { cpuSeconds, fixture, settledRss, sleep } from './proc.js';
import type { Child } from './proc.js';
import type { Report } from './report.js';
import { interleave, median, spread } from './rounds.js';

const LOOPS = 16;
const SECONDS = 3;

export async function benchConnections(report: Report, cleanups: (() => Promise<void>)[], rounds: number): Promise<void> {
  const echo = await fixture('echo', [], true);
  cleanups.push(() => echo.child.stop());
  const tlsRelay = await startNodeTlsRelay(echo.port);
  if (typeof tlsRelay === 'string') report.note(`connections: node_tls_relay baseline skipped: ${tlsRelay}`);
  else cleanups.push(tlsRelay.stop);
  const postern = await startPostern([{ name: 'echo', type: 'tls', upstream: `tcp://127.0.0.1:${echo.port}` }]);
  cleanups.push(postern.stop);
  const tlsTarget: TlsTarget = { servername: 'echo.localhost', ca: postern.caPem, ...postern.client };
  const relayTarget: TlsTarget = { servername: 'localhost', ca: '' };
  // The fair baseline for a tls socket: a relay that also requires a client certificate (Postern's CA issued this one).
  const mtlsRelay = await startNodeTlsRelay(echo.port, [], postern.caFile);
  if (typeof mtlsRelay === 'string') report.note(`connections: node_mtls_relay baseline skipped: ${mtlsRelay}`);
  else cleanups.push(mtlsRelay.stop);
  const mtlsTarget: TlsTarget = { servername: 'localhost', ca: '', ...postern.client };
  // What a user would script instead: stunnel requiring the same client certificate, in front of ssh -R to the echo server.
  const ssh = await optionalBaseline(report, cleanups, 'connections: stunnel_ssh_r (its ssh -R)', () => startSshReverse(echo.port));
  const stunnel = ssh && await optionalBaseline(report, cleanups, 'connections: stunnel_ssh_r', () => startStunnel(ssh.port, postern.caFile));

  await connectionRate(echo.port, LOOPS, 1); // warm-ups
  await connectionRate(postern.port, LOOPS, 1, tlsTarget);
  // Postern's CPU is summed over its full-handshake rounds only.
  const cpu = [0, 0];
  const posternRound = async () => {
    const before = [cpuSeconds(postern.server.pid), cpuSeconds(postern.connector.pid)];
    const r = await connectionRate(postern.port, LOOPS, SECONDS, tlsTarget);
    cpu[0]! += cpuSeconds(postern.server.pid) - before[0]!;
    cpu[1]! += cpuSeconds(postern.connector.pid) - before[1]!;
    return r;
  };
  type Case = readonly [string, () => Promise<RateResult>];
  const cases: Case[] = [
    ['direct_tcp', () => connectionRate(echo.port, LOOPS, SECONDS)],
    ...(typeof tlsRelay === 'string' ? [] : [['node_tls_relay', () => connectionRate(tlsRelay.port, LOOPS, SECONDS, relayTarget)] as Case]),
    ...(typeof mtlsRelay === 'string' ? [] : [['node_mtls_relay', () => connectionRate(mtlsRelay.port, LOOPS, SECONDS, mtlsTarget)] as Case]),
    ...(stunnel ? [['stunnel_ssh_r', () => connectionRate(stunnel.port, LOOPS, SECONDS, mtlsTarget)] as Case] : []),
    ['postern_tls', posternRound],
    ['postern_tls_resumed', () => connectionRate(postern.port, LOOPS, SECONDS, tlsTarget, { resume: true })],
  ];
  const results = await interleave(rounds, cases,
    (name, round, r) => {
      console.log(`  connections ${name} round ${round}: ${r.perSecond.toFixed(0)}/s (${r.completed} ok, ${r.errors} errors${r.resumed ? `, ${r.resumed} resumed` : ''})`);
      if (r.errors > 0) report.note(`connections: ${name} round ${round}: ${r.errors} failed connections of ${r.completed + r.errors} (last error: ${r.lastError})`);
    },
    (name, round, err) => report.note(`connections: ${name} round ${round} FAILED: ${err.message.split('\n')[0]}`));
  const rates = (name: string) => results.get(name)?.runs.map((r) => r.perSecond) ?? [];
  const get = (name: string) => (rates(name).length > 0 ? median(rates(name)) : undefined);
  const total = (name: string, key: 'completed' | 'errors' | 'resumed') => results.get(name)?.runs.reduce((sum, r) => sum + r[key], 0) ?? 0;

  const direct = get('direct_tcp');
  const relay = get('node_tls_relay');
  const mtls = get('node_mtls_relay');
  const tunneled = get('postern_tls');
  const resumed = get('postern_tls_resumed');
  if (direct !== undefined) {
    report.figure('connections.direct_tcp', direct, 'conn/s');
    if (relay !== undefined) report.compare('connections.node_tls_relay', relay, 'conn/s', 'direct_tcp', direct);
    if (mtls !== undefined) report.compare('connections.node_mtls_relay', mtls, 'conn/s', 'direct_tcp', direct);
    const viaSsh = get('stunnel_ssh_r');
    if (viaSsh !== undefined) report.compare('connections.stunnel_ssh_r', viaSsh, 'conn/s', 'direct_tcp', direct);
  }
  if (tunneled !== undefined) {
    if (mtls !== undefined) report.compare('connections.postern_tls', tunneled, 'conn/s', 'node_mtls_relay', mtls, { text: '>= 0.9x node mTLS relay', pass: (r) => r >= 0.9 });
    if (relay !== undefined) report.compare('connections.postern_tls', tunneled, 'conn/s', 'node_tls_relay', relay);
    const viaSsh = get('stunnel_ssh_r');
    if (viaSsh !== undefined) report.compare('connections.postern_tls', tunneled, 'conn/s', 'stunnel_ssh_r', viaSsh);
    if (direct !== undefined) report.compare('connections.postern_tls', tunneled, 'conn/s', 'direct_tcp', direct);
  }
  if (resumed !== undefined && mtls !== undefined) report.compare('connections.postern_tls_resumed', resumed, 'conn/s', 'node_mtls_relay', mtls);
  const handshakes = total('postern_tls', 'completed');
  const perConn = (i: number) => (cpu[i]! * 1000) / Math.max(handshakes, 1);
  const resumable = total('postern_tls_resumed', 'completed') + total('postern_tls_resumed', 'errors');
  report.note(`connections: ${LOOPS} loops x ${SECONDS} s of connect, write 1 byte, read the echo, end, wait for close; ${rounds} interleaved rounds, each figure the median; spread (max/min over rounds): ${cases.map(([name]) => `${name} ${spread(rates(name)).toFixed(2)}`).join(', ')}`);
  report.note(`connections: TLS clients skip certificate verification (like wrk) and do a full handshake each time, except postern_tls_resumed (${total('postern_tls_resumed', 'resumed')} of ${resumable} handshakes resumed a session ticket); node_mtls_relay requires a client certificate from Postern's CA, as a tls socket does`);
  report.note(`connections: Postern CPU per new connection (full handshake): server ${perConn(0).toFixed(2)} ms, connector ${perConn(1).toFixed(2)} ms; the bench client, Postern and the echo server share the 2 cores`);
}

export async function benchMemory(report: Report, cleanups: (() => Promise<void>)[], count: number): Promise<void> {
  const echo = await fixture('echo', [], true);
  cleanups.push(() => echo.child.stop());
  const tcpRelay = await fixture('tcp-relay', [echo.port], true, [INSPECT_ARG]);
  cleanups.push(() => tcpRelay.child.stop());
  const tlsRelay = await startNodeTlsRelay(echo.port, [INSPECT_ARG]);
  if (typeof tlsRelay === 'string') report.note(`memory: node_tls_relay baseline skipped: ${tlsRelay}`);
  else cleanups.push(tlsRelay.stop);
  const postern = await startPostern([{ name: 'idle', type: 'tls', upstream: `tcp://127.0.0.1:${echo.port}` }], [INSPECT_ARG]);
  cleanups.push(postern.stop);
  const mtlsRelay = await startNodeTlsRelay(echo.port, [INSPECT_ARG], postern.caFile);
  if (typeof mtlsRelay === 'string') report.note(`memory: node_mtls_relay baseline skipped: ${mtlsRelay}`);
  else cleanups.push(mtlsRelay.stop);

  // Warm up code paths first so one-time costs (JIT, lazy modules, TLS contexts) are not counted per connection.
  await connectionRate(postern.port, 8, 1, { servername: 'idle.localhost', ca: postern.caPem, ...postern.client });
  await connectionRate(tcpRelay.port, 8, 1);
  if (typeof tlsRelay !== 'string') await connectionRate(tlsRelay.port, 8, 1, { servername: 'localhost', ca: '' });
  if (typeof mtlsRelay !== 'string') await connectionRate(mtlsRelay.port, 8, 1, { servername: 'localhost', ca: '', ...postern.client });
  await sleep(2_000);

  /** Full GC in each process (through its inspector), then the median RSS. */
  const readRss = async (procs: [string, Child][]) => {
    for (const [, child] of procs) await collectGarbage(child);
    await sleep(500);
    return Promise.all(procs.map(([, child]) => settledRss(child.pid)));
  };
  const measure = async (label: string, procs: [string, Child][], clientArgs: (string | number)[]) => {
    const before = await readRss(procs);
    const client = (await fixture('idle-clients', clientArgs, true)).child;
    const m = await client.waitFor(/^ready (\d+) open, (\d+) errors(.*)$/, 90_000);
    const open = Number(m[1]);
    if (Number(m[2]) > 0) report.note(`memory: ${label}: ${m[2]} of ${count} connections failed${m[3] ?? ''}`);
    await sleep(3_000);
    const after = await readRss(procs);
    client.proc.stdin!.write('count\n');
    const still = Number((await client.waitFor(/^open (\d+)/, 5_000))[1]);
    if (still !== open) report.note(`memory: ${label}: only ${still} of ${open} idle connections were still open when RSS was read`);
    await client.stop();
    await sleep(1_000);
    const perConn = procs.map(([name], i) => ({ name, kib: (after[i]! - before[i]!) / Math.max(open, 1), before: before[i]!, after: after[i]! }));
    for (const p of perConn) console.log(`  memory ${label} ${p.name}: RSS ${p.before} → ${p.after} KiB over ${open} connections = ${p.kib.toFixed(1)} KiB/conn`);
    return { open, kib: perConn.map((p) => p.kib) };
  };

  // Baselines: plain Node relays (TCP, and TLS-terminating) holding the same number of idle client+upstream pairs.
  const tcpBase = await measure('node_tcp_relay', [['relay', tcpRelay.child]], [tcpRelay.port, count, '-', '-']);
  let tlsBase: { open: number; kib: number[] } | undefined;
  if (typeof tlsRelay !== 'string') {
    const certFile = join(tlsRelay.dir, 'cert.pem');
    readFileSync(certFile); // fail early if missing
    tlsBase = await measure('node_tls_relay', [['relay', tlsRelay.child]], [tlsRelay.port, count, 'localhost', certFile]);
  }
  let mtlsBase: { open: number; kib: number[] } | undefined;
  if (typeof mtlsRelay !== 'string') {
    mtlsBase = await measure('node_mtls_relay', [['relay', mtlsRelay.child]], [mtlsRelay.port, count, 'localhost', join(mtlsRelay.dir, 'cert.pem'), postern.clientFiles.key, postern.clientFiles.cert]);
  }
  const tunneled = await measure('postern', [['server', postern.server], ['connector', postern.connector]], [postern.port, count, 'idle.localhost', postern.caFile, postern.clientFiles.key, postern.clientFiles.cert]);
  for (const [i, side] of ['server', 'connector'].entries()) {
    const name = `memory.postern_${side}_per_idle_conn`;
    const kib = tunneled.kib[i]!;
    if (side === 'connector') report.compare(name, kib, 'KiB', 'target', 4, { text: '<= 4 KiB', pass: () => kib <= 4 });
    if (mtlsBase) report.compare(name, kib, 'KiB', 'node_mtls_relay', mtlsBase.kib[0]!, side === 'server' ? { text: '<= 1.1x node mTLS relay', pass: (r) => r <= 1.1 } : undefined);
    report.compare(name, kib, 'KiB', 'node_tcp_relay', tcpBase.kib[0]!);
    if (tlsBase) report.compare(name, kib, 'KiB', 'node_tls_relay', tlsBase.kib[0]!);
  }
  report.note(`memory: ${tunneled.open} idle connections through the Postern tls socket (each echoed 1 byte first); RSS growth (VmRSS), each reading a median of 5 samples over 2 s after a full GC forced through the inspector, 3 s after the last connection opened`);
  report.note('memory: baselines are one Node process relaying the same idle connections to the same echo server: node_tcp_relay (plain TCP both sides) and node_tls_relay (TLS from the client, TCP upstream) and node_mtls_relay (the same, requiring a client certificate, as Postern\'s tls sockets do), i.e. one process doing the work of Postern server + connector');
}
