// Bench group "streams": thousands of idle streams on one connector: the edge's and the connector's RSS per stream
// (and whether it grows linearly), and a bulk download beside them against the same download alone, in interleaved rounds.
import { readdirSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { connectionRate, downloadTcp } from './clients.js';
import type { TlsTarget } from './clients.js';
import { INSPECT_ARG, collectGarbage } from './inspector.js';
import { CLI, startPostern } from './postern.js';
import type { Postern } from './postern.js';
import { fixture, run, settledRss, sleep, start } from './proc.js';
import type { Child } from './proc.js';
import type { Report } from './report.js';
import { median, spread } from './rounds.js';

const BYTES = 256 * 1024 ** 2;
const WARM_BYTES = 16 * 1024 ** 2;
/** The streams open in this many equal steps; RSS is read after each one. */
const STEPS = 4;
/** Growth counts as linear when every step's slope is within this fraction of the fitted slope. */
const LINEAR_TOLERANCE = 0.25;
/** Rounds after the first are skipped once the next would end past this (the group's share of the bench's time). */
const BUDGET_MS = 170_000;
const FIXTURE = fileURLToPath(new URL('./fixture.js', import.meta.url));
const SIDES = ['server', 'connector'] as const;

interface Point {
  open: number;
  /** KiB, per side. */
  rss: number[];
}

/** Full GC in each process (through its inspector), then the median RSS of each. */
async function rssAfterGc(procs: readonly Child[]): Promise<number[]> {
  for (const child of procs) await collectGarbage(child);
  await sleep(500);
  return Promise.all(procs.map((child) => settledRss(child.pid)));
}

/** Readings after GC until two in a row agree (within 1% or 1 MiB): memory freed by a bulk download goes back to the system over seconds, not at once. */
async function settledBaseline(procs: readonly Child[]): Promise<number[]> {
  let last = await rssAfterGc(procs);
  for (let i = 0; i < 4; i++) {
    const next = await rssAfterGc(procs);
    if (next.every((kib, k) => Math.abs(kib - last[k]!) <= Math.max(1024, last[k]! / 100))) return next;
    last = next;
  }
  return last;
}

const fdCount = (pid: number) => readdirSync(`/proc/${pid}/fd`).length;

/** User streams open on each live tunnel, as the edge counts them. */
function tunnelStreams(postern: Postern): number[] {
  const env = { ...process.env, POSTERN_DATA_DIR: postern.dataDir, POSTERN_LOG_LEVEL: 'warn', POSTERN_SERVER: `https://localhost:${postern.port}` };
  const r = run(process.execPath, [CLI, 'connector', 'ls', '--json'], { env, timeoutMs: 30_000 });
  if (r.code !== 0) throw new Error(`postern connector ls failed (${r.code}): ${r.stderr.trim()}`);
  const list = JSON.parse(r.stdout) as { tunnels?: { activeStreams?: number; draining: boolean }[] }[];
  return list.flatMap((c) => c.tunnels ?? []).filter((t) => !t.draining).map((t) => t.activeStreams ?? 0);
}

/** An idle-clients fixture holding `count` connections to the `idle` socket; it prints "ready" only once all are open, later than fixture() waits. */
async function openIdle(report: Report, postern: Postern, count: number): Promise<{ child: Child; open: number }> {
  const args = [postern.port, count, 'idle.localhost', postern.caFile, postern.clientFiles.key, postern.clientFiles.cert];
  const child = start('fixture idle-clients', process.execPath, [FIXTURE, 'idle-clients', ...args.map(String)], { raiseNofile: true });
  const m = await child.waitFor(/^ready (\d+) open, (\d+) errors(.*)$/, 90_000);
  if (Number(m[2]) > 0) report.note(`streams: ${m[2]} of ${count} connections failed to open${m[3] ?? ''}`);
  return { child, open: Number(m[1]) };
}

/** Least-squares slope of y over x. */
function fitSlope(points: readonly { x: number; y: number }[]): number {
  const mx = points.reduce((s, p) => s + p.x, 0) / points.length;
  const my = points.reduce((s, p) => s + p.y, 0) / points.length;
  const sxx = points.reduce((s, p) => s + (p.x - mx) ** 2, 0);
  return sxx > 0 ? points.reduce((s, p) => s + (p.x - mx) * (p.y - my), 0) / sxx : Number.NaN;
}

/** Figures for RSS per stream (the fit over every step) and whether each step's slope stays near it. */
function reportGrowth(report: Report, points: readonly Point[]): void {
  for (const [i, side] of SIDES.entries()) {
    const slope = fitSlope(points.map((p) => ({ x: p.open, y: p.rss[i]! })));
    const steps = points.slice(1).map((p, k) => (p.rss[i]! - points[k]!.rss[i]!) / Math.max(p.open - points[k]!.open, 1));
    const off = (s: number) => Math.abs(s / slope - 1);
    const worst = steps.reduce((w, s) => (off(s) > off(w) ? s : w));
    const linear = steps.every((s) => off(s) <= LINEAR_TOLERANCE);
    report.figure(`streams.postern_${side}_per_stream`, slope, 'KiB');
    if (side === 'server') report.compare('streams.postern_server_worst_step', worst, 'KiB', 'fit', slope, { text: `within ±${LINEAR_TOLERANCE * 100}% of the fit (linear)`, pass: (r) => Math.abs(r - 1) <= LINEAR_TOLERANCE });
    report.note(`streams: ${side} RSS ${points.map((p) => `${p.rss[i]} KiB at ${p.open}`).join(', ')} streams; per-step slopes ${steps.map((s) => s.toFixed(1)).join(', ')} KiB/stream against a fit of ${slope.toFixed(1)}: ${linear ? 'linear, every step within' : 'NOT linear, a step off by more than'} ±${LINEAR_TOLERANCE * 100}%`);
  }
}

/** Stops the idle clients, then waits (bounded) until the tunnels and the edge have let go of their streams; notes what is left. */
async function closeIdle(report: Report, postern: Postern, held: Child[], fdsBefore: number, round: number): Promise<void> {
  await Promise.all(held.splice(0).map((child) => child.stop()));
  const deadline = Date.now() + 20_000;
  let left = tunnelStreams(postern);
  while ((left.some((n) => n > 0) || fdCount(postern.server.pid) > fdsBefore + 20) && Date.now() < deadline) {
    await sleep(1_000);
    left = tunnelStreams(postern);
  }
  if (left.some((n) => n > 0)) report.note(`streams: round ${round}: ${left.join(' + ')} streams were still open on the tunnels 20 s after their clients closed`);
  const fds = fdCount(postern.server.pid);
  if (fds > fdsBefore + 20) report.note(`streams: round ${round}: the server held ${fds} fds 20 s after the clients closed, ${fdsBefore} before they opened`);
}

export async function benchStreams(report: Report, cleanups: (() => Promise<void>)[], rounds: number, count: number): Promise<void> {
  const started = Date.now();
  const echo = await fixture('echo', [], true);
  const source = await fixture('tcp-source', [BYTES]);
  const warmSource = await fixture('tcp-source', [WARM_BYTES]);
  cleanups.push(() => echo.child.stop(), () => source.child.stop(), () => warmSource.child.stop());
  const postern = await startPostern([
    { name: 'idle', type: 'tls', upstream: `tcp://127.0.0.1:${echo.port}` },
    { name: 'stream', type: 'tls', upstream: `tcp://127.0.0.1:${source.port}` },
    { name: 'warm', type: 'tls', upstream: `tcp://127.0.0.1:${warmSource.port}` },
  ], [INSPECT_ARG]);
  cleanups.push(postern.stop);
  const held: Child[] = [];
  cleanups.push(() => Promise.all(held.splice(0).map((child) => child.stop())).then(() => undefined));
  const procs = [postern.server, postern.connector];
  const target = (socket: string): TlsTarget => ({ servername: `${socket}.localhost`, ca: postern.caPem, ...postern.client });
  const download = async (what: string, round: number) => {
    const d = await downloadTcp(postern.port, BYTES, target('stream'));
    console.log(`  streams bulk ${what} round ${round}: ${d.mbps.toFixed(0)} MB/s (${d.seconds.toFixed(2)} s)`);
    return d.mbps;
  };

  // Warm up code paths (JIT, TLS contexts) so one-time costs count neither per stream nor against the first download. The warm-up is
  // small: memory it frees stays with the process and would be reused by the first streams, hiding their cost.
  await connectionRate(postern.port, 2, 0.5, target('idle'));
  await downloadTcp(postern.port, WARM_BYTES, target('warm'));
  await sleep(2_000);

  const solo: number[] = [];
  const beside: number[] = [];
  let done = 0;
  // Each round opens the streams, downloads beside them, closes them and downloads alone; only round 1 reads RSS (before any full download).
  for (let round = 1; round <= rounds; round++) {
    const roundStart = Date.now();
    const fdsBefore = fdCount(postern.server.pid);
    const points: Point[] = round === 1 ? [{ open: 0, rss: await settledBaseline(procs) }] : [];
    let open = 0;
    for (let step = 1; step <= STEPS; step++) {
      const want = Math.round((count * step) / STEPS) - Math.round((count * (step - 1)) / STEPS);
      const opened = Date.now();
      const idle = await openIdle(report, postern, want);
      held.push(idle.child);
      open += idle.open;
      console.log(`  streams round ${round} step ${step}: ${open} open (${(idle.open / ((Date.now() - opened) / 1000)).toFixed(0)}/s); fds: server ${fdCount(postern.server.pid)}, connector ${fdCount(postern.connector.pid)}`);
      if (round !== 1) continue;
      await sleep(2_000);
      points.push({ open, rss: await rssAfterGc(procs) });
      console.log(`  streams RSS at ${open} streams: server ${points.at(-1)!.rss[0]} KiB, connector ${points.at(-1)!.rss[1]} KiB`);
    }
    if (round === 1) reportGrowth(report, points);
    const perTunnel = tunnelStreams(postern);
    console.log(`  streams round ${round}: user streams per tunnel of the one connector: ${perTunnel.join(', ')}`);
    if (perTunnel.reduce((s, n) => s + n, 0) < open) report.note(`streams: round ${round}: the tunnels carry ${perTunnel.join(' + ')} streams, fewer than the ${open} idle connections open`);

    beside.push(await download(`beside ${open}`, round));
    // The idle streams must still carry data after the bulk passed beside them.
    let echoed = 0;
    for (const child of held) {
      child.proc.stdin!.write('ping\n');
      echoed += Number((await child.waitFor(/^pong (\d+) of (\d+)/, 15_000))[1]);
    }
    if (echoed !== open) report.note(`streams: round ${round}: only ${echoed} of ${open} idle streams echoed a byte after the bulk download`);
    await closeIdle(report, postern, held, fdsBefore, round);
    solo.push(await download('solo', round));

    done = round;
    const roundMs = Date.now() - roundStart;
    if (round < rounds && Date.now() - started + roundMs > BUDGET_MS) {
      report.note(`streams: stopped after ${round} of ${rounds} rounds (a round took ${(roundMs / 1000).toFixed(0)} s) to stay within the group's ~3 min`);
      break;
    }
  }

  const label = count % 1000 === 0 ? `${count / 1000}k` : String(count);
  report.compare(`streams.bulk_beside_${label}`, median(beside), 'MB/s', 'solo', median(solo), { text: '>= 0.9x solo', pass: (r) => r >= 0.9 });
  report.note(`streams: ${count} idle tls connections through Postern (each echoed 1 byte, then idle: one tunnel stream each, on the one connector and its 2 tunnel connections), opened in ${STEPS} steps by ${STEPS} client processes; RSS (VmRSS) of server and connector after a full GC forced through the inspector, median of 5 samples over 2 s, 2 s after each step (at 0, until two readings agree); KiB/stream is the least-squares slope over 0 and every step`);
  report.note(`streams: the bulk is a ${BYTES / 1024 ** 2} MiB download through a second tls socket of the same connector, beside the ${count} open streams and then alone once they closed, in ${done} interleaved rounds (each figure the median; spread max/min: beside ${spread(beside).toFixed(2)}, solo ${spread(solo).toFixed(2)}); the idle streams echo 1 byte again after each bulk download beside them`);
}
