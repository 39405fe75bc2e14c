// What the e2e tests of `postgres` sockets share: the machine's PostgreSQL (POSTERN_TEST_PG),
// psql runs against it and through the edge, the rule that a missing PostgreSQL fails in CI and
// is a visible skip elsewhere, and the fixture: a real server with postgres sockets, policies,
// a connector logging in upstream, and signed-in laptops each relaying with `client db --listen`.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { stringify } from 'yaml';
import { createKeyAndCsr } from '../../src/ca/csr.js';
import { api } from './https.js';
import { signedInLaptop } from './login.js';
import { spawnCli, startConnector, startServer, writeConnectorConfig } from './processes.js';
import type { PostgresLoginYaml, ServerHandle } from './processes.js';
import { freePort, tempDir } from './util.js';

const PG = new URL(process.env.POSTERN_TEST_PG ?? 'postgres://postgres@127.0.0.1:5432/postgres');
export const PG_HOST = PG.hostname;
export const PG_PORT = Number(PG.port || 5432);
export const PG_USER = decodeURIComponent(PG.username || 'postgres');
/** The database the superuser connects to for set-up (CREATE DATABASE, pg_stat_activity). */
export const ADMIN_DB = PG.pathname.slice(1) || 'postgres';
/** The machine's PostgreSQL as a socket's and a connector's upstream. */
export const PG_UPSTREAM = `tcp://${PG_HOST}:${PG_PORT}`;
/** Every fixture person's password. */
export const PASSWORD = 'correct horse battery staple';

/** Flags of every psql run here: never prompt for a password, no psqlrc, stop at the first error. */
export const PSQL_FLAGS: readonly string[] = ['-w', '-X', '-v', 'ON_ERROR_STOP=1'];

/** `env` with a bounded connect, for psql. */
export const psqlEnv = (env: NodeJS.ProcessEnv = process.env): NodeJS.ProcessEnv => ({ ...env, PGCONNECT_TIMEOUT: '10' });

/** psql's target through a `postern client db` relay on `port`: any user name does (the certificate is the identity). */
export function viaRelay(port: number, database?: string): string[] {
  return ['-h', '127.0.0.1', '-p', String(port), '-U', 'anyone', ...(database !== undefined ? ['-d', database] : [])];
}

export interface PsqlRun {
  /** psql's exit code (0 on success). */
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs psql to completion with unaligned, tuples-only output; killed after `timeout` ms. */
export function runPsql(args: readonly string[], options: { env?: NodeJS.ProcessEnv; timeout?: number } = {}): Promise<PsqlRun> {
  return new Promise((resolve) => {
    execFile('psql', [...PSQL_FLAGS, '-tA', ...args], { timeout: options.timeout ?? 20_000, env: psqlEnv(options.env) },
      (err, stdout, stderr) => resolve({ code: err ? (typeof err.code === 'number' ? err.code : 1) : 0, stdout, stderr }));
  });
}

/** SQL as the superuser straight to the machine's PostgreSQL, past Postern (set-up and checks). */
export function direct(database: string, sql: string): Promise<PsqlRun> {
  return runPsql(['-h', PG_HOST, '-p', String(PG_PORT), '-U', PG_USER, '-d', database, '-c', sql]);
}

/** Why the machine's PostgreSQL cannot be used, or undefined when it answers. */
export async function postgresUnreachable(): Promise<string | undefined> {
  const reachable = await direct(ADMIN_DB, 'select 1');
  return reachable.code === 0 ? undefined : `PostgreSQL unreachable at ${PG_HOST}:${PG_PORT}: ${reachable.stderr.trim()}`;
}

/**
 * `reason` (something `tests` need is missing) as a skip: in CI (CI=true) what the tests need
 * must be there, so it fails instead; elsewhere the skip is printed so it is not missed.
 */
export function skipFor(tests: string, reason: string | undefined): string | false {
  if (!reason) return false;
  if (process.env.CI === 'true') assert.fail(reason);
  process.stderr.write(`skipping ${tests}: ${reason}\n`);
  return reason;
}

/** A fresh database `name` on the machine's PostgreSQL (one left by a killed run is dropped first), then `setup` run in it. */
export async function createDatabase(name: string, setup: string): Promise<void> {
  await direct(ADMIN_DB, `drop database if exists ${name}`);
  assert.equal((await direct(ADMIN_DB, `create database ${name}`)).code, 0);
  const ran = await direct(name, setup);
  assert.equal(ran.code, 0, ran.stderr);
}

/** Drops `name`, ending the sessions still in it. */
export async function dropDatabase(name: string): Promise<void> {
  await direct(ADMIN_DB, `drop database if exists ${name} with (force)`);
}

/** A Postern client certificate for `email`, as `postern client db` gets one (PEM). */
export async function issueCertificate(server: ServerHandle, email: string): Promise<{ cert: string; key: string }> {
  const { keyPem, csrPem } = await createKeyAndCsr(email);
  const issued = await api(server, '/api/v1/certificates/tls', { method: 'POST', body: { csr: csrPem, email, ttl_seconds: 600 } });
  assert.equal(issued.status, 201, issued.text);
  return { cert: issued.json<{ certificate: string }>().certificate, key: keyPem };
}

/** libpq conninfo straight to the edge's port for `socket` with `email`'s certificate files (sslmode=verify-full). */
export async function edgeConninfo(server: ServerHandle, email: string, database: string, socket = 'orders'): Promise<string> {
  const { cert, key } = await issueCertificate(server, email);
  const dir = (await tempDir()).path;
  await writeFile(join(dir, 'key.pem'), key, { mode: 0o600 });
  await writeFile(join(dir, 'cert.pem'), cert);
  return `host=${socket}.localhost hostaddr=127.0.0.1 port=${server.port} dbname=${database} user=anyone sslmode=verify-full sslrootcert=${server.caFile} sslcert=${join(dir, 'cert.pem')} sslkey=${join(dir, 'key.pem')}`;
}

/** A live connection as `postern sessions ls --json` lists it. */
export interface ListedConnection {
  id: string;
  socket: string;
  email: string;
  activity: string;
  activitySince: string | null;
}

/** `email`'s live connections on `socket`. */
export async function socketConnections(server: ServerHandle, email: string, socket = 'orders'): Promise<ListedConnection[]> {
  const listed = await server.cli(['sessions', 'ls', '--user', email, '--json']);
  return (JSON.parse(listed.stdout) as { connections: ListedConnection[] }[]).flatMap((s) => s.connections).filter((c) => c.socket === socket);
}

export interface PolicyYaml {
  name: string;
  namespace?: string;
  sockets: string[];
  rules: { name: string; effect: 'allow'; who: { email?: string[]; group?: string[] }; what: { database: { names?: string[]; users?: string[]; read_only?: boolean } } }[];
}

export interface PostgresSocketSpec {
  readonly name: string;
  /** Default: the machine's PostgreSQL. */
  readonly upstream?: string;
  /** More `socket create` flags (`--tag`, `--database`). */
  readonly flags?: readonly string[];
  /** How the connector logs in upstream; default: as the machine's superuser. */
  readonly login?: PostgresLoginYaml;
}

export interface PostgresEdgeOptions {
  readonly people: readonly { readonly email: string; readonly groups?: readonly string[] }[];
  readonly sockets: readonly PostgresSocketSpec[];
  readonly policies: readonly PolicyYaml[];
  /** `client db` relays by name: whose laptop, to which socket (default orders), with what more flags. */
  readonly relays: Readonly<Record<string, { readonly email: string; readonly socket?: string; readonly flags?: readonly string[] }>>;
  /** More environment for the connector (password_env variables). */
  readonly connectorEnv?: NodeJS.ProcessEnv;
}

export interface PostgresEdge {
  readonly server: ServerHandle;
  /** A temp dir of this fixture, for the test's own files. */
  readonly dir: string;
  /** The port each relay listens on. */
  readonly relays: Record<string, number>;
  /** The environment of each person's signed-in laptop (those with a relay). */
  readonly laptops: Record<string, NodeJS.ProcessEnv>;
  /** Writes `policy` as YAML and applies it with `postern policy apply`. */
  applyPolicy(policy: PolicyYaml): Promise<void>;
}

/** A server with `people`, the postern sockets and policies, one connector serving them all, and the relays (each ready). */
export async function startPostgresEdge(options: PostgresEdgeOptions): Promise<PostgresEdge> {
  const server = await startServer();
  for (const { email, groups } of options.people) {
    const created = await api(server, '/api/v1/users', { method: 'POST', body: { email, password: PASSWORD, ...(groups ? { groups } : {}) } });
    assert.equal(created.status, 201, created.text);
  }
  for (const socket of options.sockets) {
    const created = await server.cli(['socket', 'create', '--name', socket.name, '--type', 'postgres', '--upstream', socket.upstream ?? PG_UPSTREAM, ...(socket.flags ?? [])]);
    assert.equal(created.code, 0, created.stderr);
  }
  const dir = (await tempDir()).path;
  const applyPolicy = async (policy: PolicyYaml) => {
    const file = join(dir, `${policy.name}.yaml`);
    await writeFile(file, stringify(policy));
    const applied = await server.cli(['policy', 'apply', '-f', file]);
    assert.equal(applied.code, 0, applied.stderr);
  };
  for (const policy of options.policies) await applyPolicy(policy);

  const token = await server.cli(['connector', 'token', 'create', '--name', 'pg', ...options.sockets.flatMap((s) => ['--socket', s.name])]);
  assert.equal(token.code, 0, token.stderr);
  const config = await writeConnectorConfig(dir, 'c.yaml', {
    server: server.url, token: token.stdout.trim(),
    sockets: options.sockets.map((s) => ({ name: s.name, type: 'postgres', upstream: s.upstream ?? PG_UPSTREAM, postgres: s.login ?? { user: PG_USER } })),
  });
  await startConnector(['connector', 'start', '--config', config], { ...server.env, ...options.connectorEnv });

  const laptops: Record<string, NodeJS.ProcessEnv> = {};
  const relays: Record<string, number> = {};
  for (const [name, relay] of Object.entries(options.relays)) {
    const laptop = (laptops[relay.email] ??= await signedInLaptop(server, relay.email, PASSWORD));
    const host = `${relay.socket ?? 'orders'}.localhost`;
    relays[name] = await freePort();
    const relaying = spawnCli(`client db (${name})`, ['client', 'db', '--host', host, '--listen', `127.0.0.1:${relays[name]}`, ...(relay.flags ?? [])], laptop);
    await relaying.waitForOutput(new RegExp(`postgres on 127\\.0\\.0\\.1:\\d+ → ${host.replace(/\./g, '\\.')}`));
  }
  return { server, dir, relays, laptops, applyPolicy };
}
