// E2E: a `postgres` socket against the machine's real PostgreSQL, reached with real psql and
// node-postgres through `postern client db` (no database password: the identity is the
// certificate, the role is the connector's). Policy decides the database at startup; a
// read-only person is refused every kind of write before it reaches the database; statements
// are audited with their durations; a kill ends a running pg_sleep with a FATAL message.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import tls from 'node:tls';
import pg from 'pg';
import { stringify } from 'yaml';
import { auditEvents, cleanupAll, spawnCli, startConnector, startServer, waitForAudit } from '../helpers/processes.js';
import type { ServerHandle } from '../helpers/processes.js';
import { api } from '../helpers/https.js';
import { createKeyAndCsr } from '../../src/ca/csr.js';
import { signedInLaptop } from '../helpers/login.js';
import { freePort, tempDir, waitFor, withTimeout } from '../helpers/util.js';

const PASSWORD = 'correct horse battery staple';
const PG = new URL(process.env.POSTERN_TEST_PG ?? 'postgres://postgres@127.0.0.1:5432/postgres');
const PG_HOST = PG.hostname;
const PG_PORT = Number(PG.port || 5432);
const PG_USER = decodeURIComponent(PG.username || 'postgres');
const ADMIN_DB = PG.pathname.slice(1) || 'postgres';
const DB = `postern_pgsocket_${process.pid}`;

interface Run { code: number; stdout: string; stderr: string; ms: number }

function psql(port: number, database: string, sql: string, extra: readonly string[] = [], timeout = 20_000): Promise<Run> {
  const started = Date.now();
  return new Promise((resolve) => {
    execFile('psql', ['-w', '-X', '-h', '127.0.0.1', '-p', String(port), '-U', 'anyone', '-d', database, '-v', 'ON_ERROR_STOP=1', '-v', 'VERBOSITY=verbose', '-tA', '-c', sql, ...extra],
      { timeout, env: { ...process.env, PGCONNECT_TIMEOUT: '10', PGPASSWORD: '' } },
      (err, stdout, stderr) => resolve({ code: err ? (typeof err.code === 'number' ? err.code : 1) : 0, stdout, stderr, ms: Date.now() - started }));
  });
}

function direct(database: string, sql: string): Promise<Run> {
  const started = Date.now();
  return new Promise((resolve) => {
    execFile('psql', ['-w', '-X', '-h', PG_HOST, '-p', String(PG_PORT), '-U', PG_USER, '-d', database, '-v', 'ON_ERROR_STOP=1', '-tA', '-c', sql],
      { timeout: 20_000, env: { ...process.env, PGCONNECT_TIMEOUT: '10' } },
      (err, stdout, stderr) => resolve({ code: err ? 1 : 0, stdout, stderr, ms: Date.now() - started }));
  });
}

describe('postgres sockets: identity, audited statements, read-only, kill', async () => {
  const reachable = await direct(ADMIN_DB, 'select 1');
  const skip = reachable.code !== 0 && `PostgreSQL unreachable at ${PG_HOST}:${PG_PORT}: ${reachable.stderr.trim()}`;
  if (skip && process.env.CI === 'true') assert.fail(skip);
  if (skip) process.stderr.write(`skipping postgres socket tests: ${skip}\n`);

  let server: ServerHandle;
  let policyFile = '';
  const ports: Record<string, number> = {};
  const applyPolicy = async (readers: readonly string[]) => {
    await writeFile(policyFile, stringify({
      name: 'orders-db', namespace: 'corp', sockets: ['orders'], rules: [
        { name: 'writers', effect: 'allow', who: { email: ['wes@corp.example'] }, what: { database: { names: [DB] } } },
        { name: 'readers', effect: 'allow', who: { email: readers }, what: { database: { names: [DB], read_only: true } } },
      ],
    }));
    const applied = await server.cli(['policy', 'apply', '-f', policyFile]);
    assert.equal(applied.code, 0, applied.stderr);
  };
  const orderConnections = async (email: string) => (JSON.parse((await server.cli(['sessions', 'ls', '--user', email, '--json'])).stdout) as { connections: { id: string; socket: string }[] }[])
    .flatMap((s) => s.connections).filter((c) => c.socket === 'orders');
  const sleepRunning = async (count: number) => (await direct(ADMIN_DB, `select count(*) from pg_stat_activity where datname = '${DB}' and query = 'select pg_sleep(30)' and state = 'active'`)).stdout.trim() === String(count);
  /** Starts `select pg_sleep(30)` as `person` and resolves once it runs upstream and its connection is listed. */
  const startSleep = async (person: string) => {
    // earlier sessions may still be listed for a moment (the edge reports closes within 200 ms)
    const earlier = new Set((await orderConnections(`${person}@corp.example`)).map((c) => c.id));
    const sleeping = psql(ports[person]!, DB, 'select pg_sleep(30)', [], 40_000);
    const connection = await waitFor(async () => (await orderConnections(`${person}@corp.example`)).find((c) => !earlier.has(c.id)), { what: 'the database session listed', timeoutMs: 10_000 });
    await waitFor(() => sleepRunning(1), { what: 'pg_sleep running upstream', timeoutMs: 10_000 });
    return { sleeping, connection };
  };

  before(async () => {
    if (skip) return;
    await direct(ADMIN_DB, `drop database if exists ${DB}`);
    assert.equal((await direct(ADMIN_DB, `create database ${DB}`)).code, 0);
    assert.equal((await direct(DB, 'create table t (id int)')).code, 0);
    server = await startServer();
    for (const email of ['ana@corp.example', 'wes@corp.example', 'eve@corp.example']) {
      assert.equal((await api(server, '/api/v1/users', { method: 'POST', body: { email, password: PASSWORD } })).status, 201);
    }
    const created = await server.cli(['socket', 'create', '--name', 'orders', '--type', 'postgres', '--upstream', `tcp://${PG_HOST}:${PG_PORT}`, '--tag', 'namespace=corp']);
    assert.equal(created.code, 0, created.stderr);
    const dir = (await tempDir()).path;
    policyFile = join(dir, 'orders.yaml');
    await applyPolicy(['ana@corp.example']);
    const token = await server.cli(['connector', 'token', 'create', '--name', 'pg', '--socket', 'orders']);
    const config = join(dir, 'c.yaml');
    await writeFile(config, stringify({
      server: server.url, token: token.stdout.trim(), credentials: './c.yaml.creds.json',
      sockets: [{ name: 'orders', type: 'postgres', upstream: `tcp://${PG_HOST}:${PG_PORT}`, postgres: { user: PG_USER } }],
    }));
    await startConnector(['connector', 'start', '--config', config], server.env);
    for (const person of ['ana', 'wes', 'eve']) {
      const laptop = await signedInLaptop(server, `${person}@corp.example`, PASSWORD);
      ports[person] = await freePort();
      const relay = spawnCli(`client db (${person})`, ['client', 'db', '--host', 'orders.localhost', '--listen', `127.0.0.1:${ports[person]}`], laptop);
      await relay.waitForOutput(/postgres on 127\.0\.0\.1:\d+ → orders\.localhost/);
    }
  });

  after(async () => {
    await cleanupAll();
    if (!skip) await direct(ADMIN_DB, `drop database if exists ${DB} with (force)`);
  });

  test('psql without a password: SELECT works, as the connector\'s role, not the client\'s user', { skip }, async () => {
    const run = await psql(ports.ana!, DB, 'select 40 + 2, current_user');
    assert.equal(run.code, 0, run.stderr);
    assert.equal(run.stdout.trim(), `42|${PG_USER}`);
  });

  test('psql directly with sslmode=verify-full and the certificate files: the edge answers the SSLRequest on its main port', { skip }, async () => {
    const { keyPem, csrPem } = await createKeyAndCsr('ana@corp.example');
    const issued = await api(server, '/api/v1/certificates/tls', { method: 'POST', body: { csr: csrPem, email: 'ana@corp.example', ttl_seconds: 600 } });
    assert.equal(issued.status, 201, issued.text);
    const dir = (await tempDir()).path;
    await writeFile(join(dir, 'ana.key'), keyPem, { mode: 0o600 });
    await writeFile(join(dir, 'ana.crt'), issued.json<{ certificate: string }>().certificate);
    const conninfo = `host=orders.localhost hostaddr=127.0.0.1 port=${server.port} dbname=${DB} user=anyone sslmode=verify-full sslrootcert=${server.caFile} sslcert=${join(dir, 'ana.crt')} sslkey=${join(dir, 'ana.key')}`;
    const run = await new Promise<Run>((resolve) => {
      execFile('psql', ['-w', '-X', '-tA', '-c', 'select 6 * 7', conninfo], { timeout: 20_000, env: { ...process.env, PGCONNECT_TIMEOUT: '10' } },
        (err, stdout, stderr) => resolve({ code: err ? 1 : 0, stdout, stderr, ms: 0 }));
    });
    assert.equal(run.code, 0, run.stderr);
    assert.equal(run.stdout.trim(), '42');
  });

  test('an oversized message length ends only that connection, with FATAL 08P01', { skip }, async () => {
    const { keyPem, csrPem } = await createKeyAndCsr('ana@corp.example');
    const issued = await api(server, '/api/v1/certificates/tls', { method: 'POST', body: { csr: csrPem, email: 'ana@corp.example', ttl_seconds: 600 } });
    const received = await withTimeout(new Promise<Buffer>((resolve, reject) => {
      const socket = tls.connect({ host: '127.0.0.1', port: server.port, servername: 'orders.localhost', ca: server.caPem, key: keyPem, cert: issued.json<{ certificate: string }>().certificate });
      const chunks: Buffer[] = [];
      socket.on('secureConnect', () => socket.write(Buffer.from('00100000000300000000', 'hex')));
      socket.on('data', (chunk: Buffer) => chunks.push(chunk));
      socket.on('close', () => resolve(Buffer.concat(chunks)));
      socket.on('error', reject);
    }), 10_000, 'the refusal of an oversized startup');
    assert.equal(String.fromCharCode(received[0]!), 'E');
    assert.match(received.toString('latin1'), /C08P01\0Mpostern: a startup packet of 1048576 bytes \(at most 10000\)/);
    const after = await psql(ports.ana!, DB, 'select 1');
    assert.equal(after.stdout.trim(), '1', after.stderr);
  });

  test('read-only: INSERT, a data-modifying CTE, COPY FROM STDIN and a write in a multi-statement string are refused with 42501 and audited', { skip }, async () => {
    const writes = ['insert into t values (1)', 'with gone as (delete from t returning *) select count(*) from gone', 'copy t from stdin', 'select 1; insert into t values (2)'];
    for (const sql of writes) {
      const run = await psql(ports.ana!, DB, sql);
      assert.notEqual(run.code, 0, `${sql} should be refused`);
      assert.match(run.stderr, /42501: postern: .* \(read-only by corp\/orders-db#readers\)/, sql);
    }
    // the upstream session is read-only too: what gets past the parser (a function) cannot write
    const guc = await psql(ports.ana!, DB, 'show default_transaction_read_only');
    assert.equal(guc.stdout.trim(), 'on', guc.stderr);
    assert.equal((await direct(DB, 'select count(*) from t')).stdout.trim(), '0');
    for (const sql of writes) {
      const refused = await waitForAudit(server, ['--type', 'db.query', '--decision', 'deny'], (e) => e.details.statement === sql, `the refusal of ${sql}`);
      assert.equal(refused.actor, 'ana@corp.example');
      assert.equal(refused.details.error, '42501');
      assert.equal(refused.details.database, DB);
    }
  });

  test('node-postgres (extended protocol with parameters): reads pass, a parameterised write is refused', { skip }, async () => {
    const client = new pg.Client({ host: '127.0.0.1', port: ports.ana!, user: 'anyone', database: DB, password: '' });
    await client.connect();
    try {
      assert.equal((await client.query('select $1::int + 1 as n', [41])).rows[0].n, 42);
      await assert.rejects(client.query('insert into t values ($1)', [5]), (err: { code?: string; message: string }) => err.code === '42501' && /INSERT/.test(err.message));
      assert.equal((await client.query('select $1::text as s', ['still usable'])).rows[0].s, 'still usable');
      // inside a transaction block a refused statement aborts the block, as PostgreSQL would
      await client.query('begin');
      await assert.rejects(client.query('delete from t'), (err: { code?: string }) => err.code === '42501');
      await assert.rejects(client.query('select 1'), (err: { code?: string }) => err.code === '25P02');
      await client.query('rollback');
      assert.equal((await client.query('select 2 as n')).rows[0].n, 2);
    } finally {
      await client.end();
    }
  });

  test('a writer policy can write; the audit shows statements with durations and rows', { skip }, async () => {
    const run = await psql(ports.wes!, DB, 'insert into t values (7), (8)');
    assert.equal(run.code, 0, run.stderr);
    assert.equal((await direct(DB, 'select count(*) from t')).stdout.trim(), '2');
    const audited = await waitForAudit(server, ['--type', 'db.query', '--decision', 'allow'], (e) => e.actor === 'wes@corp.example' && e.details.statement === 'insert into t values (7), (8)', 'the write in the audit');
    assert.equal(audited.details.rows, 2);
    assert.equal(typeof audited.details.durationMs, 'number');
    const started = (await auditEvents(server, ['--type', 'db.session.start'])).find((e) => e.actor === 'wes@corp.example');
    assert.equal(started?.details.readOnly, false);
  });

  test('a person no rule allows onto the database is refused at startup with the reason', { skip }, async () => {
    const run = await psql(ports.eve!, DB, 'select 1');
    assert.notEqual(run.code, 0);
    // psql prints a startup refusal without its SQLSTATE; the message names the rules it checked
    assert.match(run.stderr, /FATAL: {2}postern: denied: no rule allows this .*corp\/orders-db#readers: email eve@corp\.example is not one of ana@corp\.example/);
    await waitForAudit(server, ['--type', 'access.denied'], (e) => e.actor === 'eve@corp.example' && e.socket === 'orders', 'the refusal in the audit');
  });

  test('sessions kill ends a running pg_sleep(30) with FATAL 57P01 and the reason', { skip }, async () => {
    const { sleeping, connection } = await startSleep('ana');
    const killedAt = Date.now();
    assert.equal((await server.cli(['sessions', 'kill', connection.id])).code, 0);
    const run = await withTimeout(sleeping, 5_000, 'psql ends after the kill');
    const ms = Date.now() - killedAt;
    process.stderr.write(`kill → psql exit: ${ms} ms\n`);
    assert.notEqual(run.code, 0);
    assert.match(run.stderr, /FATAL: {2}57P01: postern: session ended: killed by an administrator/);
    await waitFor(() => sleepRunning(0), { what: 'the upstream statement cancelled', timeoutMs: 5_000 });
  });

  test('a policy change that no longer allows the person ends their running session with the reason', { skip }, async () => {
    const { sleeping } = await startSleep('ana');
    const changedAt = Date.now();
    await applyPolicy(['wes@corp.example']);
    const run = await withTimeout(sleeping, 5_000, 'psql ends after the policy change');
    process.stderr.write(`policy change → psql exit: ${Date.now() - changedAt} ms\n`);
    assert.match(run.stderr, /FATAL: {2}57P01: postern: session ended: denied: no rule allows this/);
    await waitFor(() => sleepRunning(0), { what: 'the upstream statement cancelled', timeoutMs: 5_000 });
    const refused = await psql(ports.ana!, DB, 'select 1');
    assert.match(refused.stderr, /FATAL: {2}postern: denied: no rule allows this/);
  });
});
