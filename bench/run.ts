// Entry point of `npm run bench`: runs the bench groups on loopback and prints each figure beside its baselines.
import { Report } from './report.js';
import { installCleanup, nofileLimits, run, setSpawnPrefix, stopAll, which } from './proc.js';
import { benchAgent } from './group-agent.js';
import { benchBulk } from './group-bulk.js';
import { benchHttp } from './group-http.js';
import { benchConnections, benchMemory } from './group-conns.js';
import { benchDb } from './group-db.js';
import { benchPolicy } from './group-policy.js';
import { benchSsh } from './group-ssh.js';
import { benchStreams } from './group-streams.js';

const GROUPS = ['bulk', 'http', 'connections', 'memory', 'streams', 'ssh', 'db', 'agent', 'policy'] as const;
type Group = (typeof GROUPS)[number];
const WATCHDOG_MS = 12 * 60_000;
const IDLE_CONNECTIONS = 1_000;
/** Idle streams the streams group holds on one connector (the 10,000). */
const STREAMS = 10_000;

/** Interleaved rounds per comparison (each figure is the median of its rounds): 3 keeps the whole bench within its watchdog on 2 cores. */
const DEFAULT_ROUNDS = 3;

interface Args {
  json?: string;
  only?: Group;
  rounds: number;
  streams: number;
}

function parseArgs(argv: string[]): Args {
  const out: Args = { rounds: DEFAULT_ROUNDS, streams: STREAMS };
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    const value = () => {
      const v = argv[++i];
      if (v === undefined) throw new Error(`${arg} needs a value`);
      return v;
    };
    if (arg === '--json') out.json = value();
    else if (arg === '--rounds') {
      const n = Number(value());
      if (!Number.isInteger(n) || n < 1 || n > 15) throw new Error(`--rounds takes a whole number from 1 to 15, not "${argv[i]}"`);
      out.rounds = n;
    }
    else if (arg === '--streams') {
      const n = Number(value());
      if (!Number.isInteger(n) || n < 100 || n > 50_000) throw new Error(`--streams takes a whole number from 100 to 50000, not "${argv[i]}"`);
      out.streams = n;
    }
    else if (arg === '--only') {
      const g = value();
      if (!(GROUPS as readonly string[]).includes(g)) throw new Error(`--only takes one of ${GROUPS.join('|')}, not "${g}"`);
      out.only = g as Group;
    } else if (arg === '--help' || arg === '-h') {
      console.log(`usage: node dist/bench/run.js [--only ${GROUPS.join('|')}] [--rounds N (default ${DEFAULT_ROUNDS})] [--streams N (default ${STREAMS})] [--json FILE]`);
      process.exit(0);
    } else throw new Error(`unknown argument ${arg}`);
  }
  return out;
}

/** Fds each child may hold: the soft limit, or more under prlimit when that is below `need` (node raises its soft limit to the hard one by itself). */
function planFdLimit(report: Report, need: number): number {
  const { soft, hard } = nofileLimits();
  if (soft >= need) return soft;
  const prlimit = which('prlimit');
  // Raising the hard limit needs CAP_SYS_RESOURCE (often missing in containers): try it, then the soft-up-to-hard raise.
  for (const target of [65_536, Math.min(hard, 65_536)]) {
    if (!prlimit || target <= soft || run(prlimit, [`--nofile=${target}:${target}`, 'true']).code !== 0) continue;
    setSpawnPrefix([prlimit, `--nofile=${target}:${target}`]);
    report.note(`fd limit is ${soft} (hard ${hard}): Postern, fixtures and clients run under prlimit --nofile=${target}:${target}`);
    return target;
  }
  return soft;
}

/** As many of `wanted` (at least 100) as `fds` holds at `perItem` fds each beside `reserve`, with a note when that is fewer. */
function fitFds(report: Report, fds: number, wanted: number, perItem: number, reserve: number, what: (n: number) => string): number {
  const count = Math.max(100, Math.min(wanted, Math.floor((fds - reserve) / perItem)));
  if (count < wanted) report.note(`fd limit is ${fds}: ${what(count)} instead of ${wanted}`);
  return count;
}

async function main(): Promise<number> {
  const args = parseArgs(process.argv.slice(2));
  installCleanup();
  const watchdog = setTimeout(() => {
    console.error(`bench: watchdog: still running after ${WATCHDOG_MS / 60_000} min; stopping everything`);
    void stopAll().finally(() => process.exit(1));
  }, WATCHDOG_MS);
  watchdog.unref();

  const startedAt = Date.now();
  const report = new Report();
  console.log(`Postern bench on 127.0.0.1 — node ${process.version}, ${(await import('node:os')).cpus().length} CPUs`);
  for (const tool of ['wrk', 'nginx', 'sshd', 'stunnel4']) if (!which(tool) && !(tool === 'stunnel4' && which('stunnel'))) report.note(`${tool} is not installed: its baselines are skipped (apt-get install wrk nginx-light openssh-server stunnel4)`);
  // A memory-group relay holds two fds per idle connection (client + upstream); in the streams group the edge, the connector and the echo server each hold one per stream.
  const fds = planFdLimit(report, Math.max(2 * IDLE_CONNECTIONS + 100, args.streams + 500));
  const idleCount = fitFds(report, fds, IDLE_CONNECTIONS, 2, 100, (n) => `memory group opens ${n} idle connections`);
  const streamCount = fitFds(report, fds, args.streams, 1, 500, (n) => `streams group opens ${n} streams`);

  let failures = 0;
  for (const group of GROUPS) {
    if (args.only && args.only !== group) continue;
    const t0 = Date.now();
    console.log(`\n== ${group}`);
    const cleanups: (() => Promise<void>)[] = [];
    try {
      if (group === 'bulk') await benchBulk(report, cleanups, args.rounds);
      else if (group === 'http') await benchHttp(report, cleanups, args.rounds);
      else if (group === 'connections') await benchConnections(report, cleanups, args.rounds);
      else if (group === 'memory') await benchMemory(report, cleanups, idleCount);
      else if (group === 'streams') await benchStreams(report, cleanups, args.rounds, streamCount);
      else if (group === 'ssh') await benchSsh(report, cleanups, args.rounds);
      else if (group === 'db') await benchDb(report, cleanups, args.rounds);
      else if (group === 'agent') await benchAgent(report, cleanups, args.rounds);
      else await benchPolicy(report);
    } catch (err) {
      failures++;
      report.note(`${group}: group FAILED: ${(err as Error).stack ?? String(err)}`);
    } finally {
      for (const cleanup of cleanups.reverse()) await cleanup().catch((err: Error) => report.note(`${group}: cleanup failed: ${err.message}`));
    }
    console.log(`  (${group}: ${((Date.now() - t0) / 1000).toFixed(1)} s)`);
  }

  report.print();
  if (args.json) {
    report.writeJson(args.json);
    console.log(`\nwrote ${report.rows.length} rows to ${args.json}`);
  }
  console.log(`\nbench took ${((Date.now() - startedAt) / 1000).toFixed(1)} s`);
  return failures > 0 ? 1 : 0;
}

main()
  .then(async (code) => {
    await stopAll();
    process.exit(code);
  })
  .catch(async (err: Error) => {
    console.error(`bench: ${err.message}`);
    await stopAll();
    process.exit(2);
  });
