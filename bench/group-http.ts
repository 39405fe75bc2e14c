// Bench group "http": small requests with wrk (-c 16 and -c 64) direct, via a Node proxy, via nginx, and through a Postern http socket.
import { haveWrk, wrk } from './clients.js';
import type { WrkResult } from './clients.js';
import { startNginx } from './baselines.js';
import { startPostern } from './postern.js';
import { fixture } from './proc.js';
import type { Report } from './report.js';

const SECONDS = 5;

export async function benchHttp(report: Report, cleanups: (() => Promise<void>)[]): Promise<void> {
  if (!haveWrk()) {
    report.note('http: skipped entirely: wrk is not installed (apt-get install wrk)');
    return;
  }
  const upstream = await fixture('http-upstream', [1024]);
  const proxy = await fixture('http-proxy', [upstream.port]);
  cleanups.push(() => upstream.child.stop(), () => proxy.child.stop());
  const nginx = await startNginx(upstream.port).catch((err: Error) => `nginx failed to start: ${err.message}`);
  if (typeof nginx === 'string') report.note(`http: nginx baseline skipped: ${nginx}`);
  else cleanups.push(nginx.stop);
  const postern = await startPostern([{ name: 'web', type: 'http', upstream: `http://127.0.0.1:${upstream.port}` }]);
  cleanups.push(postern.stop);

  const targets: [string, string, string | undefined][] = [
    ['direct', `http://127.0.0.1:${upstream.port}/`, undefined],
    ['node_proxy', `http://127.0.0.1:${proxy.port}/`, undefined],
    ...(typeof nginx === 'string' ? [] : [['nginx', `http://127.0.0.1:${nginx.port}/`, undefined] as [string, string, string | undefined]]),
    ['postern', `https://127.0.0.1:${postern.port}/`, `web.localhost:${postern.port}`],
  ];
  for (const [name, url, host] of targets) {
    await wrk(url, 16, 1, host).catch((err: Error) => report.note(`http: warm-up of ${name} failed: ${err.message}`));
  }
  for (const conns of [16, 64]) {
    const results = new Map<string, WrkResult>();
    for (const [name, url, host] of targets) {
      try {
        const r = await wrk(url, conns, SECONDS, host);
        console.log(`  http c${conns} ${name}: ${r.rps.toFixed(0)} req/s, p50 ${r.p50ms.toFixed(3)} ms, p99 ${r.p99ms.toFixed(3)} ms`);
        if (r.problems.length > 0) report.note(`http: c${conns} ${name}: ${r.problems.join('; ')} (of ${r.requests} requests)`);
        results.set(name, r);
      } catch (err) {
        report.note(`http: c${conns} ${name} FAILED: ${(err as Error).message.split('\n')[0]}`);
      }
    }
    const direct = results.get('direct');
    const node = results.get('node_proxy');
    const ngx = results.get('nginx');
    const pst = results.get('postern');
    const p = `http.c${conns}`;
    if (direct) report.figure(`${p}.direct.rps`, direct.rps, 'req/s');
    if (node && direct) report.compare(`${p}.node_proxy.rps`, node.rps, 'req/s', 'direct', direct.rps);
    if (ngx && direct) report.compare(`${p}.nginx.rps`, ngx.rps, 'req/s', 'direct', direct.rps);
    if (pst) {
      if (direct) report.compare(`${p}.postern.rps`, pst.rps, 'req/s', 'direct', direct.rps);
      if (node) report.compare(`${p}.postern.rps`, pst.rps, 'req/s', 'node_proxy', node.rps, { text: '>= 0.6x node proxy', pass: (r) => r >= 0.6 });
      if (ngx) report.compare(`${p}.postern.rps`, pst.rps, 'req/s', 'nginx', ngx.rps);
    }
    for (const pct of ['p50', 'p99'] as const) {
      const key = pct === 'p50' ? 'p50ms' : 'p99ms';
      if (direct) report.figure(`${p}.direct.${pct}`, direct[key], 'ms');
      if (node && direct) report.compare(`${p}.node_proxy.${pct}`, node[key], 'ms', 'direct', direct[key]);
      if (ngx && direct) report.compare(`${p}.nginx.${pct}`, ngx[key], 'ms', 'direct', direct[key]);
      if (pst && direct) {
        const added = pst[key] - direct[key];
        report.compare(`${p}.postern.${pct}`, pst[key], 'ms', 'direct', direct[key],
          pct === 'p50' ? { text: `added ${added.toFixed(2)} ms <= 1 ms`, pass: () => added <= 1 } : undefined);
      }
      if (pst && node) report.compare(`${p}.postern.${pct}`, pst[key], 'ms', 'node_proxy', node[key]);
    }
  }
  report.note(`http: wrk --latency -t 2 -d ${SECONDS}s; upstream answers "ok" (~150 bytes with headers); Postern is HTTPS (TLS at the edge), the others plain HTTP; ratio = value / baseline (for latency, > 1 is slower)`);
}
