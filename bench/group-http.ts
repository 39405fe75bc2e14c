// Bench group "http": small requests with wrk (-c 16 and -c 64) direct, via Node proxies (plain and HTTPS), via nginx (plain, and HTTPS in front of ssh -R)
// and through Postern (a public socket and a sign-in socket), in interleaved rounds.
import { haveWrk, wrk } from './clients.js';
import type { WrkResult } from './clients.js';
import { optionalBaseline, startNginx, startNodeHttpsProxy, startSshReverse } from './baselines.js';
import { assertSignedIn, signIn, startPostern } from './postern.js';
import { fixture } from './proc.js';
import type { Report } from './report.js';
import { interleave, median, spread } from './rounds.js';

const SECONDS = 3;
const CONNECTIONS = [16, 64] as const;

interface Target {
  name: string;
  url: string;
  headers: string[];
}

export async function benchHttp(report: Report, cleanups: (() => Promise<void>)[], rounds: number): Promise<void> {
  if (!haveWrk()) {
    report.note('http: skipped entirely: wrk is not installed (apt-get install wrk)');
    return;
  }
  const upstream = await fixture('http-upstream', [1024]);
  const proxy = await fixture('http-proxy', [upstream.port]);
  cleanups.push(() => upstream.child.stop(), () => proxy.child.stop());
  const httpsProxy = await optionalBaseline(report, cleanups, 'http: node_https_proxy', () => startNodeHttpsProxy(upstream.port));
  const nginx = await optionalBaseline(report, cleanups, 'http: nginx', () => startNginx(upstream.port));
  const ssh = await optionalBaseline(report, cleanups, 'http: nginx_tls_ssh_r (its ssh -R)', () => startSshReverse(upstream.port));
  const nginxSsh = ssh && await optionalBaseline(report, cleanups, 'http: nginx_tls_ssh_r', () => startNginx(ssh.port, { tls: true }));
  const postern = await startPostern([
    { name: 'web', type: 'http', upstream: `http://127.0.0.1:${upstream.port}` },
    { name: 'app', type: 'http', upstream: `http://127.0.0.1:${upstream.port}`, signIn: true },
  ]);
  cleanups.push(postern.stop);
  const cookie = await signIn(postern, 'app');

  const targets: Target[] = [
    { name: 'direct', url: `http://127.0.0.1:${upstream.port}/`, headers: [] },
    { name: 'node_proxy', url: `http://127.0.0.1:${proxy.port}/`, headers: [] },
    ...(httpsProxy ? [{ name: 'node_https_proxy', url: `https://127.0.0.1:${httpsProxy.port}/`, headers: [] }] : []),
    ...(nginx ? [{ name: 'nginx', url: `http://127.0.0.1:${nginx.port}/`, headers: [] }] : []),
    ...(nginxSsh ? [{ name: 'nginx_tls_ssh_r', url: `https://127.0.0.1:${nginxSsh.port}/`, headers: [] }] : []),
    { name: 'postern', url: `https://127.0.0.1:${postern.port}/`, headers: [`Host: web.localhost:${postern.port}`] },
    { name: 'postern_signin', url: `https://127.0.0.1:${postern.port}/`, headers: [`Host: app.localhost:${postern.port}`, `Cookie: ${cookie}`] },
  ];
  for (const t of targets) await wrk(t.url, 16, 1, t.headers).catch((err: Error) => report.note(`http: warm-up of ${t.name} failed: ${err.message}`));

  // One case per (connections, target); each round runs all of them in turn.
  const cases = CONNECTIONS.flatMap((conns) => targets.map((t) => [`c${conns} ${t.name}`, () => wrk(t.url, conns, SECONDS, t.headers)] as const));
  const results = await interleave(rounds, cases,
    (name, round, r) => {
      console.log(`  http ${name} round ${round}: ${r.rps.toFixed(0)} req/s, p50 ${r.p50ms.toFixed(3)} ms, p99 ${r.p99ms.toFixed(3)} ms`);
      if (r.problems.length > 0) report.note(`http: ${name} round ${round}: ${r.problems.join('; ')} (of ${r.requests} requests)`);
    },
    (name, round, err) => report.note(`http: ${name} round ${round} FAILED: ${err.message.split('\n')[0]}`));
  await assertSignedIn(postern, 'app', cookie);

  const spreads: string[] = [];
  for (const conns of CONNECTIONS) {
    const runs = (name: string) => results.get(`c${conns} ${name}`)?.runs ?? [];
    const get = (name: string): Pick<WrkResult, 'rps' | 'p50ms' | 'p99ms'> | undefined => {
      const r = runs(name);
      return r.length === 0 ? undefined : { rps: median(r.map((x) => x.rps)), p50ms: median(r.map((x) => x.p50ms)), p99ms: median(r.map((x) => x.p99ms)) };
    };
    spreads.push(...targets.map((t) => `c${conns} ${t.name} ${spread(runs(t.name).map((x) => x.rps)).toFixed(2)}`));
    const m = new Map(targets.map((t) => [t.name, get(t.name)]));
    const p = `http.c${conns}`;
    const direct = m.get('direct');
    if (direct) report.figure(`${p}.direct.rps`, direct.rps, 'req/s');
    for (const base of ['node_proxy', 'node_https_proxy', 'nginx', 'nginx_tls_ssh_r']) {
      const b = m.get(base);
      if (b && direct) report.compare(`${p}.${base}.rps`, b.rps, 'req/s', 'direct', direct.rps);
    }
    const atLeast = (k: number, what: string) => ({ text: `>= ${k.toFixed(1)}x ${what}`, pass: (r: number) => r >= k });
    const rpsTargets: Record<string, { text: string; pass: (r: number) => boolean }> = { node_https_proxy: atLeast(0.8, 'node https proxy'), nginx_tls_ssh_r: atLeast(1.0, 'nginx+ssh -R') };
    const pst = m.get('postern');
    if (pst) {
      for (const base of ['direct', 'node_proxy', 'node_https_proxy', 'nginx', 'nginx_tls_ssh_r']) {
        const b = m.get(base);
        if (b) report.compare(`${p}.postern.rps`, pst.rps, 'req/s', base, b.rps, rpsTargets[base]);
      }
    }
    const signin = m.get('postern_signin');
    if (signin) {
      if (pst) report.compare(`${p}.postern_signin.rps`, signin.rps, 'req/s', 'postern', pst.rps, atLeast(0.8, 'public socket'));
      const node = m.get('node_https_proxy');
      if (node) report.compare(`${p}.postern_signin.rps`, signin.rps, 'req/s', 'node_https_proxy', node.rps);
    }
    for (const pct of ['p50', 'p99'] as const) {
      const key = pct === 'p50' ? 'p50ms' : 'p99ms';
      if (direct) report.figure(`${p}.direct.${pct}`, direct[key], 'ms');
      for (const base of ['node_proxy', 'node_https_proxy', 'nginx', 'nginx_tls_ssh_r']) {
        const b = m.get(base);
        if (b && direct) report.compare(`${p}.${base}.${pct}`, b[key], 'ms', 'direct', direct[key]);
      }
      for (const name of ['postern', 'postern_signin']) {
        const v = m.get(name);
        const node = m.get('node_https_proxy');
        if (!v) continue;
        if (direct) report.compare(`${p}.${name}.${pct}`, v[key], 'ms', 'direct', direct[key]);
        if (!node) continue;
        const added = v[key] - node[key];
        const held = name === 'postern' && pct === 'p50';
        report.compare(`${p}.${name}.${pct}`, v[key], 'ms', 'node_https_proxy', node[key], held ? { text: `added ${added.toFixed(2)} ms <= 0.5 ms`, pass: () => added <= 0.5 } : undefined);
      }
    }
  }
  report.note(`http: wrk --latency -t 2 -d ${SECONDS}s, ${rounds} interleaved rounds (every target at c16 then c64, in turn), each figure the median of its rounds; upstream answers "ok" (~150 bytes with headers)`);
  report.note('http: HTTPS (TLS at the proxy): node_https_proxy, nginx_tls_ssh_r (nginx terminating TLS in front of ssh -R to the upstream), postern (public socket) and postern_signin (sign-in socket: session cookie checked, policy decided and an http.request audit event per request); plain HTTP: direct, node_proxy, nginx; ratio = value / baseline (for latency, > 1 is slower)');
  report.note(`http: spread of req/s (max/min over rounds): ${spreads.join(', ')}`);
}
