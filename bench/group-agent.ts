// Bench group "agent": the agents' mesh on one machine. Agent A speaks for the bench process (its
// node executable is the declared caller) and gives it local listeners; agent B receives over
// mutual TLS and delivers to local upstreams. Beside it: direct, and a pair of plain Node relays
// doing the same work (a plain listener dialing mutual TLS with a client certificate to a TLS
// relay that requires one) — bulk bytes and new connections per second. And the L7 check's added
// latency: sequential keep-alive requests through an http dependency (JWT-SVID per request,
// decided per method and path) beside the same requests through a tcp dependency to the same upstream.
import http from 'node:http';
import { realpathSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { connectionRate, downloadTcp } from './clients.js';
import type { Download, RateResult } from './clients.js';
import { selfSignedCertificate } from './baselines.js';
import { CLI, NODE_ARGS, posternCli, startPosternServer } from './postern.js';
import type { PosternServer } from './postern.js';
import { fixture, freePort, makeTempDir, removeTempDir, run, start } from './proc.js';
import type { Child } from './proc.js';
import type { Report } from './report.js';
import { interleave, median, spread } from './rounds.js';

const BYTES = 256 * 1024 ** 2;
const RATE_LOOPS = 8;
const RATE_SECONDS = 5;
const REQUESTS = 2_000;
const NAMESPACE = 'bench';


/** Starts `postern agent` from YAML lines (after server and attestation) and waits for `ready`. */
async function startAgent(postern: PosternServer, dir: string, name: string, lines: readonly string[], ready: RegExp): Promise<Child> {
  const token = posternCli(postern.env, ['agent', 'token', 'create', '--name', name, '--attr', `namespace=${NAMESPACE}`]).trim();
  const file = join(dir, `${name}.yaml`);
  writeFileSync(file, [`server: https://localhost:${postern.port}`, `attestation: { method: join_token, token: ${token} }`, 'facts: false',
    `workload_api: { socket: ${join(dir, `${name}.sock`)} }`, ...lines, ''].join('\n'));
  const agent = start(`postern agent ${name}`, process.execPath, [...NODE_ARGS, CLI, 'agent', '--config', file], { env: { ...process.env, POSTERN_LOG_LEVEL: 'warn' }, raiseNofile: true });
  await agent.waitFor(ready, 30_000);
  return agent;
}

/** Latencies (ms) of `count` sequential GETs on one keep-alive connection. */
async function requestLatencies(port: number, count: number): Promise<number[]> {
  const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
  const once = () => new Promise<number>((resolve, reject) => {
    const t0 = process.hrtime.bigint();
    const req = http.get({ host: '127.0.0.1', port, path: '/ok', agent }, (res) => {
      res.resume();
      res.on('end', () => (res.statusCode === 200 ? resolve(Number(process.hrtime.bigint() - t0) / 1e6) : reject(new Error(`status ${res.statusCode}`))));
    });
    req.setTimeout(10_000, () => req.destroy(new Error('no answer within 10 s')));
    req.on('error', reject);
  });
  try {
    for (let i = 0; i < 50; i++) await once();
    const out: number[] = [];
    for (let i = 0; i < count; i++) out.push(await once());
    return out;
  } finally {
    agent.destroy();
  }
}

export async function benchAgent(report: Report, cleanups: (() => Promise<void>)[], rounds: number): Promise<void> {
  if (process.platform !== 'linux') {
    report.note('agent: group skipped: the mesh finds the calling process in Linux /proc');
    return;
  }
  const source = await fixture('tcp-source', [BYTES]);
  const echo = await fixture('echo', []);
  const web = await fixture('http-upstream', [2]);
  cleanups.push(() => source.child.stop(), () => echo.child.stop(), () => web.child.stop());
  const postern = await startPosternServer();
  cleanups.push(postern.stop);
  const dir = makeTempDir('postern-bench-agent-');
  cleanups.push(async () => removeTempDir(dir));

  const policy = join(dir, 'policy.yaml');
  writeFileSync(policy, [`name: bench-mesh`, `namespace: ${NAMESPACE}`, 'services: [sink, echo, web, webtcp]', 'rules:',
    '  - effect: allow', '    who: { service: { app: client } }', '    what: { tls: {}, http: {} }', ''].join('\n'));
  posternCli(postern.env, ['policy', 'apply', '-f', policy]);
  const meshPort = await freePort();
  const receiver = await startAgent(postern, dir, 'receiver', ['services:',
    `  - { name: sink, namespace: ${NAMESPACE}, port: ${source.port}, labels: { app: sink } }`,
    `  - { name: echo, namespace: ${NAMESPACE}, port: ${echo.port}, labels: { app: echo } }`,
    `  - { name: web, namespace: ${NAMESPACE}, port: ${web.port}, protocol: http, labels: { app: web } }`,
    `  - { name: webtcp, namespace: ${NAMESPACE}, port: ${web.port}, labels: { app: web } }`,
    `mesh: { listen: 127.0.0.1:${meshPort} }`], /mesh: services reachable on/);
  cleanups.push(() => receiver.stop());
  const ports = { sink: await freePort(), echo: await freePort(), web: await freePort(), webtcp: await freePort() };
  const outbound = (name: keyof typeof ports, protocol: 'tcp' | 'http') => `    - { listen: 127.0.0.1:${ports[name]}, to: ${NAMESPACE}/${name}, address: 127.0.0.1:${meshPort}, protocol: ${protocol} }`;
  // The bench process itself is the declared caller: the sender recognises it by its executable and uid.
  const sender = await startAgent(postern, dir, 'sender', ['services:',
    `  - { name: client, namespace: ${NAMESPACE}, process: { exe: ${realpathSync(process.execPath)}, uid: ${process.getuid?.() ?? 0} }, labels: { app: client } }`,
    'mesh:', '  outbound:', outbound('sink', 'tcp'), outbound('echo', 'tcp'), outbound('web', 'http'), outbound('webtcp', 'tcp')], new RegExp(`mesh: 127\\.0\\.0\\.1:${ports.webtcp} →`));
  cleanups.push(() => sender.stop());

  // The same work without Postern: plain → mutual TLS (client certificate) → plain, two Node processes.
  const cert = selfSignedCertificate(dir);
  if (typeof cert === 'string') throw new Error(`agent: ${cert}`);
  const relayPair = async (target: number) => {
    const terminating = await fixture('tls-relay', [cert.key, cert.cert, target, cert.cert], true);
    const dialing = await fixture('tls-client-relay', [terminating.port, 'localhost', cert.cert, cert.cert, cert.key], true);
    cleanups.push(() => dialing.child.stop(), () => terminating.child.stop());
    return dialing.port;
  };
  const relays = { sink: await relayPair(source.port), echo: await relayPair(echo.port) };

  // Bulk and new connections, each against direct, the relay pair and the mesh, in interleaved rounds.
  type Case<T> = readonly [string, () => Promise<T>];
  const bulkCases: Case<Download>[] = [
    ['direct', () => downloadTcp(source.port, BYTES)],
    ['node_mtls_relay_pair', () => downloadTcp(relays.sink, BYTES)],
    ['mesh', () => downloadTcp(ports.sink, BYTES)],
  ];
  const bulk = await interleave(rounds, bulkCases,
    (name, round, d) => console.log(`  agent bulk ${name} round ${round}: ${d.mbps.toFixed(0)} MB/s`),
    (name, round, err) => report.note(`agent: bulk ${name} round ${round} FAILED: ${err.message.split('\n')[0]}`));
  const rateCases: Case<RateResult>[] = [
    ['direct', () => connectionRate(echo.port, RATE_LOOPS, RATE_SECONDS)],
    ['node_mtls_relay_pair', () => connectionRate(relays.echo, RATE_LOOPS, RATE_SECONDS)],
    ['mesh', () => connectionRate(ports.echo, RATE_LOOPS, RATE_SECONDS)],
  ];
  const rates = await interleave(rounds, rateCases,
    (name, round, r) => console.log(`  agent new connections ${name} round ${round}: ${r.perSecond.toFixed(0)}/s (${r.errors} errors${r.errors ? `: ${r.lastError}` : ''})`),
    (name, round, err) => report.note(`agent: new connections ${name} round ${round} FAILED: ${err.message.split('\n')[0]}`));
  const latencyCases: Case<number[]>[] = [
    ['direct', () => requestLatencies(web.port, REQUESTS)],
    ['mesh_tcp', () => requestLatencies(ports.webtcp, REQUESTS)],
    ['mesh_http', () => requestLatencies(ports.web, REQUESTS)],
  ];
  const latencies = await interleave(rounds, latencyCases,
    (name, round, ms) => console.log(`  agent request p50 ${name} round ${round}: ${median(ms).toFixed(3)} ms`),
    (name, round, err) => report.note(`agent: requests ${name} round ${round} FAILED: ${err.message.split('\n')[0]}`));

  const of = <T>(results: Map<string, { runs: T[] }>, name: string, pick: (t: T) => number) => {
    const runs = (results.get(name)?.runs ?? []).map(pick);
    return runs.length > 0 ? median(runs) : undefined;
  };
  const mbps = (name: string) => of(bulk, name, (d) => d.mbps);
  const perSecond = (name: string) => of(rates, name, (r) => r.perSecond);
  const p50 = (name: string) => of(latencies, name, (ms) => median(ms));
  const compare = (figure: string, value: number | undefined, unit: string, baseline: string, base: number | undefined, target?: { text: string; pass: (r: number) => boolean }) => {
    if (value !== undefined && base !== undefined) report.compare(figure, value, unit, baseline, base, target);
  };
  const direct = mbps('direct');
  if (direct !== undefined) report.figure('agent.bulk_direct', direct, 'MB/s');
  compare('agent.bulk_node_mtls_relay_pair', mbps('node_mtls_relay_pair'), 'MB/s', 'direct', direct);
  compare('agent.bulk_mesh', mbps('mesh'), 'MB/s', 'node_mtls_relay_pair', mbps('node_mtls_relay_pair'), { text: '>= 0.8x Node TLS relay', pass: (r) => r >= 0.8 });
  compare('agent.bulk_mesh', mbps('mesh'), 'MB/s', 'direct', direct);
  const directRate = perSecond('direct');
  if (directRate !== undefined) report.figure('agent.new_connections_direct', directRate, '/s');
  compare('agent.new_connections_node_mtls_relay_pair', perSecond('node_mtls_relay_pair'), '/s', 'direct', directRate);
  compare('agent.new_connections_mesh', perSecond('mesh'), '/s', 'node_mtls_relay_pair', perSecond('node_mtls_relay_pair'));
  const [directMs, tcpMs, httpMs] = [p50('direct'), p50('mesh_tcp'), p50('mesh_http')];
  if (directMs !== undefined) report.figure('agent.request_p50_direct', directMs, 'ms');
  compare('agent.request_p50_mesh_tcp', tcpMs, 'ms', 'direct', directMs);
  compare('agent.request_p50_mesh_http', httpMs, 'ms', 'mesh_tcp', tcpMs);
  if (httpMs !== undefined && tcpMs !== undefined) {
    const added = httpMs - tcpMs;
    report.figure('agent.l7_added_p50', added, 'ms');
    report.note(`agent: the L7 check adds ${added.toFixed(3)} ms p50 per request (target <= 0.3 ms: ${added <= 0.3 ? 'PASS' : 'MISS'}): mesh_http minus mesh_tcp, the same mutual-TLS path to the same upstream`);
  }
  report.note(`agent: bulk = ${BYTES / 1024 ** 2} MiB per download; new connections = ${RATE_LOOPS} loops of connect → 1 byte echoed → close for ${RATE_SECONDS} s (through the mesh each one is a /proc lookup of the caller, a mutual-TLS handshake with SVIDs and a policy decision); requests = ${REQUESTS} sequential keep-alive GETs, p50 per round; spread (max/min over rounds): bulk ${bulkCases.map(([n]) => `${n} ${spread((bulk.get(n)?.runs ?? []).map((d) => d.mbps)).toFixed(2)}`).join(', ')}; rate ${rateCases.map(([n]) => `${n} ${spread((rates.get(n)?.runs ?? []).map((r) => r.perSecond)).toFixed(2)}`).join(', ')}`);
}
