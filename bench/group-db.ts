// Bench group "db": pgbench through a `postgres` socket (every statement parsed, decided and audited
// at the edge) beside the same through a plain `tls` socket (bytes relayed, TLS beside TLS) and direct
// to PostgreSQL, 8 clients, select-only and TPC-B-like, in interleaved rounds. Needs a PostgreSQL that
// takes `postgres` without a password (POSTERN_BENCH_PG, default 127.0.0.1:5432) and pgbench.
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { BENCH_USER, posternCli, startPostern } from './postern.js';
import type { Postern } from './postern.js';
import { makeTempDir, removeTempDir, run, runAsync, which } from './proc.js';
import type { Report } from './report.js';
import { interleave, median, spread } from './rounds.js';

const CLIENTS = 8;
const SECONDS = 10;
const DATABASE = 'postern_bench';

interface Endpoint {
  host: string;
  port: number;
}

/** How pgbench reaches a target: libpq's environment (host, TLS files, user). */
type Target = Record<string, string>;

/** The server's address from a postgres:// URL (user postgres, no password: trust, as on the bench machine). */
function benchServer(): Endpoint {
  const url = new URL(process.env.POSTERN_BENCH_PG ?? 'postgres://postgres@127.0.0.1:5432/postgres');
  return { host: url.hostname, port: Number(url.port || 5432) };
}

function psql(server: Endpoint, sql: string): void {
  const r = run('psql', ['-X', '-q', '-v', 'ON_ERROR_STOP=1', '-h', server.host, '-p', String(server.port), '-U', 'postgres', '-d', 'postgres', '-c', sql], { timeoutMs: 60_000 });
  if (r.code !== 0) throw new Error(`psql ${sql}: ${r.stderr.trim()}`);
}

/** libpq straight to the edge's main port: SSLRequest, then TLS with SNI = the socket's host and the user's certificate, verify-full against the Postern CA. */
function throughEdge(postern: Postern, socket: string, user: string): Target {
  return {
    PGHOST: `${socket}.localhost`, PGHOSTADDR: '127.0.0.1', PGPORT: String(postern.port), PGUSER: user,
    PGSSLMODE: 'verify-full', PGSSLROOTCERT: postern.caFile, PGSSLCERT: postern.clientFiles.cert, PGSSLKEY: postern.clientFiles.key,
  };
}

/** Transactions per second (excluding connection time) of one pgbench run against `target`. */
async function pgbench(target: Target, mode: 'select' | 'tpcb'): Promise<number> {
  const args = ['-n', '-c', String(CLIENTS), '-j', '2', '-T', String(SECONDS), ...(mode === 'select' ? ['-S'] : []), DATABASE];
  const r = await runAsync('pgbench', args, (SECONDS + 60) * 1000, { ...process.env, ...target });
  const tps = /tps = ([\d.]+) \(without initial connection time\)/.exec(r.stdout);
  if (r.code !== 0 || !tps) throw new Error(`pgbench ${mode} via ${target.PGHOST}:${target.PGPORT} failed (${r.code}): ${(r.stderr || r.stdout).trim().slice(-300)}`);
  return Number(tps[1]);
}

export async function benchDb(report: Report, cleanups: (() => Promise<void>)[], rounds: number): Promise<void> {
  const missing = ['pgbench', 'psql'].filter((tool) => !which(tool));
  if (missing.length > 0) {
    report.note(`db: group skipped: ${missing.join(', ')} not installed (apt-get install postgresql-client)`);
    return;
  }
  const server = benchServer();
  try {
    psql(server, 'SELECT 1');
  } catch (err) {
    report.note(`db: group skipped: no PostgreSQL at ${server.host}:${server.port} taking user postgres without a password (${(err as Error).message.split('\n')[0]})`);
    return;
  }
  psql(server, `DROP DATABASE IF EXISTS ${DATABASE}`);
  psql(server, `CREATE DATABASE ${DATABASE}`);
  cleanups.push(async () => psql(server, `DROP DATABASE IF EXISTS ${DATABASE}`));
  const init = run('pgbench', ['-i', '-q', '-s', '4', '-h', server.host, '-p', String(server.port), '-U', 'postgres', DATABASE], { timeoutMs: 120_000 });
  if (init.code !== 0) throw new Error(`pgbench -i failed: ${init.stderr.trim()}`);

  const upstream = `tcp://${server.host}:${server.port}`;
  const postern = await startPostern([{ name: 'pgtls', type: 'tls', upstream }, { name: 'pg', type: 'postgres', upstream, postgresUser: 'postgres' }]);
  cleanups.push(postern.stop);
  const work = makeTempDir('postern-bench-db-');
  cleanups.push(async () => removeTempDir(work));
  const policy = join(work, 'policy.yaml');
  writeFileSync(policy, `name: bench-db\nsockets: [pg]\nrules:\n  - effect: allow\n    what: { database: { names: [${DATABASE}] } }\n`);
  posternCli(postern.env, ['policy', 'apply', '-f', policy]);
  const targets: Record<'direct' | 'tls_socket' | 'postgres_socket', Target> = {
    direct: { PGHOST: server.host, PGPORT: String(server.port), PGUSER: 'postgres', PGSSLMODE: 'disable' },
    // TLS beside TLS: the same libpq handshake with the same certificate; the tls socket relays bytes to the server.
    tls_socket: throughEdge(postern, 'pgtls', 'postgres'),
    postgres_socket: throughEdge(postern, 'pg', BENCH_USER),
  };
  const names = Object.keys(targets) as (keyof typeof targets)[];
  for (const mode of ['select', 'tpcb'] as const) {
    const results = await interleave(rounds, names.map((name) => [name, () => pgbench(targets[name], mode)] as const),
      (name, round, tps) => console.log(`  db ${mode} ${name} round ${round}: ${tps.toFixed(0)} tps`),
      (name, round, err) => report.note(`db: ${mode} ${name} round ${round} FAILED: ${err.message.split('\n')[0]}`));
    const get = (name: string) => {
      const runs = results.get(name)?.runs ?? [];
      return runs.length > 0 ? median(runs) : undefined;
    };
    const [direct, tls, socket] = names.map(get);
    if (direct !== undefined) report.figure(`db.pgbench_${mode}_direct`, direct, 'tps');
    if (tls !== undefined && direct !== undefined) report.compare(`db.pgbench_${mode}_tls_socket`, tls, 'tps', 'direct', direct);
    if (socket !== undefined) {
      if (direct !== undefined) report.compare(`db.pgbench_${mode}_postgres_socket`, socket, 'tps', 'direct', direct, { text: '>= 0.6x direct', pass: (r) => r >= 0.6 });
      if (tls !== undefined) report.compare(`db.pgbench_${mode}_postgres_socket`, socket, 'tps', 'tls_socket', tls);
    }
    report.note(`db: pgbench ${mode === 'select' ? '-S (select-only)' : 'TPC-B-like'}, ${CLIENTS} clients, ${SECONDS} s, scale 4; direct is plain TCP (the bench server has no TLS); through both sockets libpq speaks TLS 1.3 to the edge with the user's certificate (sslmode=verify-full, SNI); the postgres socket parses, decides and audits every statement and the connector logs in upstream; spread (max/min over rounds): ${names.map((n) => `${n} ${spread(results.get(n)?.runs ?? []).toFixed(2)}`).join(', ')}`);
  }
}
