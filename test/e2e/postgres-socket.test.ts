// E2E: a `postgres` socket against the machine's real PostgreSQL, reached with real psql and
// node-postgres through `postern client db` (no database password: the identity is the
// certificate, the role is the connector's). Policy decides the database at startup; a
// read-only person is refused every kind of write before it reaches the database; statements
// are audited with their durations; a kill ends a running pg_sleep with a FATAL message.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import tls from 'node:tls';
import pg from 'pg';
import { auditEvents, cleanupAll, waitForAudit } from '../helpers/processes.js';
import type { ServerHandle } from '../helpers/processes.js';
import { ADMIN_DB, PG_USER, createDatabase, direct, dropDatabase, edgeConninfo, issueCertificate, postgresUnreachable, runPsql, skipFor, socketConnections, startPostgresEdge, viaRelay } from '../helpers/postgres.js';
import type { PolicyYaml, PsqlRun } from '../helpers/postgres.js';
import { waitFor, withTimeout } from '../helpers/util.js';

const DB = `postern_pgsocket_${process.pid}`;

/** psql through a relay, verbose errors (with their SQLSTATE) and no password. */
function psql(port: number, database: string, sql: string, extra: readonly string[] = [], timeout = 20_000): Promise<PsqlRun> {
  return runPsql([...viaRelay(port, database), '-v', 'VERBOSITY=verbose', '-c', sql, ...extra], { env: { ...process.env, PGPASSWORD: '' }, timeout });
}

/** Wes writes; `readers` read only. */
const ordersPolicy = (readers: readonly string[]): PolicyYaml => ({
  name: 'orders-db', namespace: 'corp', sockets: ['orders'], rules: [
    { name: 'writers', effect: 'allow', who: { email: ['wes@corp.example'] }, what: { database: { names: [DB] } } },
    { name: 'readers', effect: 'allow', who: { email: [...readers] }, what: { database: { names: [DB], read_only: true } } },
  ],
});

describe('postgres sockets: identity, audited statements, read-only, kill', async () => {
  const skip = skipFor('postgres socket tests', await postgresUnreachable());

  let server: ServerHandle;
  let ports: Record<string, number> = {};
  let applyPolicy: (policy: PolicyYaml) => Promise<void>;
  const sleepRunning = async (count: number) => (await direct(ADMIN_DB, `select count(*) from pg_stat_activity where datname = '${DB}' and query = 'select pg_sleep(30)' and state = 'active'`)).stdout.trim() === String(count);
  /** Starts `select pg_sleep(30)` as `person` and resolves once it runs upstream and its connection is listed. */
  const startSleep = async (person: string) => {
    // earlier sessions may still be listed for a moment (the edge reports closes within 200 ms)
    const earlier = new Set((await socketConnections(server, `${person}@corp.example`)).map((c) => c.id));
    const sleeping = psql(ports[person]!, DB, 'select pg_sleep(30)', [], 40_000);
    const connection = await waitFor(async () => (await socketConnections(server, `${person}@corp.example`)).find((c) => !earlier.has(c.id)), { what: 'the database session listed', timeoutMs: 10_000 });
    await waitFor(() => sleepRunning(1), { what: 'pg_sleep running upstream', timeoutMs: 10_000 });
    return { sleeping, connection };
  };

  before(async () => {
    if (skip) return;
    await createDatabase(DB, "create table t (id int); create function sneaky_write() returns int language sql volatile as 'insert into t values (99) returning id'");
    const people = ['ana', 'wes', 'eve'];
    ({ server, relays: ports, applyPolicy } = await startPostgresEdge({
      people: people.map((person) => ({ email: `${person}@corp.example` })),
      sockets: [{ name: 'orders', flags: ['--tag', 'namespace=corp'] }],
      policies: [ordersPolicy(['ana@corp.example'])],
      relays: Object.fromEntries(people.map((person) => [person, { email: `${person}@corp.example` }])),
    }));
  });

  after(async () => {
    await cleanupAll();
    if (!skip) await dropDatabase(DB);
  });

  test('psql without a password: SELECT works, as the connector\'s role, not the client\'s user', { skip }, async () => {
    const run = await psql(ports.ana!, DB, 'select 40 + 2, current_user');
    assert.equal(run.code, 0, run.stderr);
    assert.equal(run.stdout.trim(), `42|${PG_USER}`);
  });

  test('psql directly with sslmode=verify-full and the certificate files: the edge answers the SSLRequest on its main port', { skip }, async () => {
    const run = await runPsql(['-c', 'select 6 * 7', await edgeConninfo(server, 'ana@corp.example', DB)]);
    assert.equal(run.code, 0, run.stderr);
    assert.equal(run.stdout.trim(), '42');
  });

  test('an oversized message length ends only that connection, with FATAL 08P01', { skip }, async () => {
    const { cert, key } = await issueCertificate(server, 'ana@corp.example');
    const received = await withTimeout(new Promise<Buffer>((resolve, reject) => {
      const socket = tls.connect({ host: '127.0.0.1', port: server.port, servername: 'orders.localhost', ca: server.caPem, key, cert });
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

  test('read-only: every kind of write (DML, DDL, COPY FROM, FOR UPDATE, a write inside a CTE or a multi-statement string, turning read-only off) is refused with 42501 and audited', { skip }, async () => {
    const writes = [
      'insert into t values (1)', 'update t set id = 2', 'delete from t', 'create table t2 (id int)', 'drop table t',
      'with gone as (delete from t returning *) select count(*) from gone', 'copy t from stdin', 'select * from t for update',
      'select 1; insert into t values (2)', 'set default_transaction_read_only = off',
    ];
    for (const sql of writes) {
      const run = await psql(ports.ana!, DB, sql);
      assert.notEqual(run.code, 0, `${sql} should be refused`);
      assert.match(run.stderr, /42501: postern: .* \(read-only by corp\/orders-db#readers\)/, sql);
    }
    // the upstream session is read-only too: what gets past the parser (a function that writes) cannot write
    const guc = await psql(ports.ana!, DB, 'show default_transaction_read_only');
    assert.equal(guc.stdout.trim(), 'on', guc.stderr);
    const sneaky = await psql(ports.ana!, DB, 'select sneaky_write()');
    assert.notEqual(sneaky.code, 0);
    assert.match(sneaky.stderr, /25006|read-only transaction/);
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
    await applyPolicy(ordersPolicy(['wes@corp.example']));
    const run = await withTimeout(sleeping, 5_000, 'psql ends after the policy change');
    process.stderr.write(`policy change → psql exit: ${Date.now() - changedAt} ms\n`);
    assert.match(run.stderr, /FATAL: {2}57P01: postern: session ended: denied: no rule allows this/);
    await waitFor(() => sleepRunning(0), { what: 'the upstream statement cancelled', timeoutMs: 5_000 });
    const refused = await psql(ports.ana!, DB, 'select 1');
    assert.match(refused.stderr, /FATAL: {2}postern: denied: no rule allows this/);
  });
});
