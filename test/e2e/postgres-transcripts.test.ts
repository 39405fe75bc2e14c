// E2E: what a `postgres` socket keeps of a session and lets a person do mid-statement, against
// the machine's real PostgreSQL with real psql and node-postgres: the transcript recorded through
// the recordings machinery (listed, replayed by `postern recordings play`), the current statement
// in `postern sessions ls`, a psql Ctrl-C (SIGINT) cancelling a pg_sleep upstream through the
// edge's own cancel keys (via `postern client db` and directly with sslmode=verify-full), and COPY
// both ways (refused FROM for a read-only person; a client gone mid-COPY leaves nothing behind).
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import net from 'node:net';
import pg from 'pg';
import { Managed, cleanupAll, waitForAudit } from '../helpers/processes.js';
import type { ServerHandle } from '../helpers/processes.js';
import { api } from '../helpers/https.js';
import { encodeStartup } from '../../src/pgwire/wire.js';
import { ADMIN_DB, PG_USER, PSQL_FLAGS, createDatabase, direct, dropDatabase, edgeConninfo, postgresUnreachable, psqlEnv, skipFor, socketConnections, startPostgresEdge, viaRelay } from '../helpers/postgres.js';
import { waitFor, withTimeout } from '../helpers/util.js';

const DB = `postern_pgtranscript_${process.pid}`;

interface Run { code: number | null; stdout: string; stderr: string }

/** psql through `postern client db` on `port` (or with `conninfo`), its stdin open for COPY data. */
function psql(target: { port: number } | { conninfo: string }, args: readonly string[]): Managed {
  const where = 'port' in target ? viaRelay(target.port, DB) : [target.conninfo];
  return new Managed('psql', spawn('psql', [...PSQL_FLAGS, '-v', 'VERBOSITY=verbose', ...args, ...where], {
    env: psqlEnv({ ...process.env, PGPASSWORD: '' }), stdio: ['pipe', 'pipe', 'pipe'],
  }));
}

async function finished(run: Managed, ms = 20_000): Promise<Run> {
  const { code } = await withTimeout(run.exited, ms, 'psql to finish');
  return { code, stdout: run.stdout, stderr: run.stderr };
}

interface Recording { id: string; kind: string; login: string; command: string; title: string; socket: string; email: string; endedAt: string | null; connectionId: string }

describe('postgres sockets: transcripts, current statements, cancel requests, COPY', async () => {
  const skip = skipFor('postgres transcript tests', await postgresUnreachable());

  let server: ServerHandle;
  let ports: Record<string, number> = {};
  const sleeping = async () => (await direct(ADMIN_DB, `select count(*) from pg_stat_activity where datname = '${DB}' and query like 'select pg_sleep%' and state = 'active'`)).stdout.trim();
  /** Runs `select pg_sleep(30)`, waits until it runs upstream, then sends psql SIGINT as Ctrl-C does. */
  const cancelledSleep = async (run: Managed) => {
    await waitFor(async () => (await sleeping()) === '1', { what: 'pg_sleep running upstream', timeoutMs: 15_000 });
    const sent = Date.now();
    run.child.kill('SIGINT');
    const result = await finished(run, 15_000);
    return { ...result, ms: Date.now() - sent };
  };

  before(async () => {
    if (skip) return;
    await createDatabase(DB, "create table fruits (id int, name text); insert into fruits values (1, 'apple'), (2, 'pear')");
    const people = ['ana', 'wes'];
    ({ server, relays: ports } = await startPostgresEdge({
      people: people.map((person) => ({ email: `${person}@corp.example` })),
      sockets: [{ name: 'orders' }],
      policies: [{
        name: 'orders-db', sockets: ['orders'], rules: [
          { name: 'writers', effect: 'allow', who: { email: ['wes@corp.example'] }, what: { database: { names: [DB] } } },
          { name: 'readers', effect: 'allow', who: { email: ['ana@corp.example'] }, what: { database: { names: [DB], read_only: true } } },
        ],
      }],
      relays: Object.fromEntries(people.map((person) => [person, { email: `${person}@corp.example` }])),
    }));
  });

  after(async () => {
    await cleanupAll();
    if (!skip) await dropDatabase(DB);
  });

  test('a session is recorded as a transcript: listed as a database recording, named by db.session.end, replayed with its statements and results', { skip }, async () => {
    const run = await finished(psql({ port: ports.wes! }, ['-c', 'select id, name from fruits order by id', '-c', "insert into fruits values (3, 'plum')", '-c', 'select nope']));
    assert.notEqual(run.code, 0, 'the last statement fails');
    assert.match(run.stderr, /42703/);
    const ended = await waitForAudit(server, ['--type', 'db.session.end'], (e) => e.actor === 'wes@corp.example' && typeof e.details.recording === 'string', 'the session end naming its recording');
    const id = ended.details.recording as string;
    const listed = await waitFor(async () => {
      const rows = JSON.parse((await server.cli(['recordings', 'ls', '--socket', 'orders', '--json'])).stdout) as Recording[];
      return rows.find((r) => r.id === id && r.endedAt !== null);
    }, { what: 'the recording listed as ended', timeoutMs: 10_000 });
    assert.equal(listed.kind, 'database');
    assert.equal(listed.login, PG_USER);
    assert.equal(listed.command, DB);
    assert.equal(listed.connectionId, ended.connectionId);
    assert.match(listed.title, new RegExp(`wes@corp\\.example on orders: database ${DB} as ${PG_USER}`));
    const table = await server.cli(['recordings', 'ls', '--socket', 'orders']);
    assert.match(table.stdout, new RegExp(`database: ${DB}`));
    const played = await server.cli(['recordings', 'play', id, '--speed', '100', '--idle-limit', '1']);
    assert.equal(played.code, 0, played.stderr);
    const screen = played.stdout.replace(/\r\n/g, '\n');
    const prompt = `${DB}=#`; // the connector's role is a superuser here
    assert.ok(screen.includes(`${prompt} select id, name from fruits order by id;\n id | name\n----+-------\n  1 | apple\n  2 | pear\n(2 rows)\n`), screen);
    assert.ok(screen.includes(`${prompt} insert into fruits values (3, 'plum');\nINSERT 0 1\n`), screen);
    assert.ok(screen.includes(`${prompt} select nope;\nERROR:  42703: column "nope" does not exist`), screen);
    const page = (await api(server, '/api/v1/recordings?socket=orders')).json<{ recordings: Recording[] }>();
    assert.ok(page.recordings.some((r) => r.id === id && r.kind === 'database'), 'the API the dashboard reads lists it');
  });

  test('a read-only person\'s refused write is in their transcript with its 42501', { skip }, async () => {
    const run = await finished(psql({ port: ports.ana! }, ['-c', 'delete from fruits']));
    assert.match(run.stderr, /42501/);
    const ended = await waitForAudit(server, ['--type', 'db.session.end'], (e) => e.actor === 'ana@corp.example' && typeof e.details.recording === 'string', 'ana\'s session end');
    await waitFor(async () => (await api(server, `/api/v1/recordings/${ended.details.recording as string}`)).json<Recording>().endedAt !== null, { what: 'the recording ended' });
    const played = await server.cli(['recordings', 'play', ended.details.recording as string, '--speed', '100', '--idle-limit', '1']);
    assert.match(played.stdout, /=# delete from fruits;\r\nERROR: {2}42501: postern: .*\(read-only by orders-db#readers\)/);
  });

  test('sessions ls shows the statement a database session runs and since when; Ctrl-C in psql cancels it upstream', { skip }, async () => {
    const run = psql({ port: ports.wes! }, ['-c', 'select pg_sleep(30)']);
    const running = await waitFor(async () => (await socketConnections(server, 'wes@corp.example')).find((c) => c.activity === 'select pg_sleep(30)'), { what: 'the running statement listed', timeoutMs: 15_000 });
    assert.ok(running.activitySince !== null && Date.now() - Date.parse(running.activitySince) < 15_000, `since ${running.activitySince}`);
    const text = await server.cli(['sessions', 'ls', '--user', 'wes@corp.example']);
    assert.match(text.stdout, /select pg_sleep\(30\) \(since \d{4}-\d\d-\d\dT/);
    const cancelled = await cancelledSleep(run);
    process.stderr.write(`SIGINT → psql exit: ${cancelled.ms} ms\n`);
    assert.match(cancelled.stderr, /57014: canceling statement due to user request/);
    assert.ok(cancelled.ms < 5_000, `cancelled in ${cancelled.ms} ms`);
    assert.equal(await sleeping(), '0');
    const cancel = await waitForAudit(server, ['--type', 'db.cancel'], (e) => e.actor === 'wes@corp.example' && e.connectionId === running.id, 'the cancel in the audit');
    assert.equal(cancel.details.statement, 'select pg_sleep(30)');
    const query = await waitForAudit(server, ['--type', 'db.query'], (e) => e.connectionId === running.id && e.details.statement === 'select pg_sleep(30)', 'the cancelled statement');
    assert.equal(query.details.error, '57014');
  });

  test('a session between statements is listed idle', { skip }, async () => {
    const client = new pg.Client({ host: '127.0.0.1', port: ports.ana!, user: 'anyone', database: DB, password: '' });
    await client.connect();
    try {
      await client.query('select 1');
      const idle = await waitFor(async () => (await socketConnections(server, 'ana@corp.example')).find((c) => c.activity === '' && c.activitySince !== null), { what: 'the idle session listed' });
      const text = await server.cli(['sessions', 'ls', '--user', 'ana@corp.example']);
      assert.match(text.stdout, /idle since \d{4}-/);
      assert.ok(idle.id.startsWith('conn_'));
    } finally {
      await client.end();
    }
  });

  test('the client is handed the edge\'s own cancel key, never the upstream\'s; a CancelRequest with an unknown key is closed silently', { skip }, async () => {
    const client = new pg.Client({ host: '127.0.0.1', port: ports.ana!, user: 'anyone', database: DB, password: '' });
    await client.connect();
    try {
      const { pid } = (await client.query('select pg_backend_pid() as pid')).rows[0] as { pid: number };
      const key = client as unknown as { processID: number; secretKey: number };
      assert.ok(Number.isInteger(key.processID) && key.processID > 0);
      assert.notEqual(key.processID, pid);
      const running = client.query('select pg_sleep(3)');
      await waitFor(async () => (await sleeping()) === '1', { what: 'pg_sleep running', timeoutMs: 10_000 });
      const received = await withTimeout(new Promise<number>((resolve, reject) => {
        let bytes = 0;
        const socket = net.connect({ host: '127.0.0.1', port: server.port }, () => socket.write(encodeStartup({ type: 'CancelRequest', processId: key.processID, secretKey: Buffer.from('00000000', 'hex') })));
        socket.on('data', (chunk: Buffer) => (bytes += chunk.length));
        socket.on('close', () => resolve(bytes));
        socket.on('error', reject);
      }), 5_000, 'the unknown cancel key closed');
      assert.equal(received, 0);
      await running;
    } finally {
      await client.end();
    }
  });

  test('psql connected directly (sslmode=verify-full): its Ctrl-C cancel arrives in the clear at the edge\'s port and cancels the statement', { skip }, async () => {
    const run = psql({ conninfo: await edgeConninfo(server, 'wes@corp.example', DB) }, ['-c', 'select pg_sleep(30)']);
    const cancelled = await cancelledSleep(run);
    process.stderr.write(`SIGINT (direct) → psql exit: ${cancelled.ms} ms\n`);
    assert.match(cancelled.stderr, /57014: canceling statement due to user request/);
    assert.ok(cancelled.ms < 5_000, `cancelled in ${cancelled.ms} ms`);
  });

  test('\\copy FROM stdin and TO stdout pass through and are audited with their rows; a read-only person\'s COPY FROM is refused with 42501', { skip }, async () => {
    const copyIn = psql({ port: ports.wes! }, ['-c', '\\copy fruits from stdin']);
    copyIn.child.stdin?.end('10\tkiwi\n11\tlime\n');
    const loaded = await finished(copyIn);
    assert.equal(loaded.code, 0, loaded.stderr);
    assert.equal((await direct(DB, 'select string_agg(name, \',\' order by id) from fruits where id >= 10')).stdout.trim(), 'kiwi,lime');
    const copiedIn = await waitForAudit(server, ['--type', 'db.query'], (e) => e.actor === 'wes@corp.example' && /^COPY\s+fruits FROM STDIN/i.test(String(e.details.statement)), 'COPY FROM in the audit');
    assert.equal(copiedIn.details.rows, 2);
    const copyOut = await finished(psql({ port: ports.ana! }, ['-c', '\\copy (select id, name from fruits where id >= 10 order by id) to stdout']));
    assert.equal(copyOut.code, 0, copyOut.stderr);
    assert.equal(copyOut.stdout, '10\tkiwi\n11\tlime\n');
    const copiedOut = await waitForAudit(server, ['--type', 'db.query'], (e) => e.actor === 'ana@corp.example' && /TO STDOUT/i.test(String(e.details.statement)), 'COPY TO in the audit');
    assert.equal(copiedOut.details.rows, 2);
    const refusedRun = psql({ port: ports.ana! }, ['-c', '\\copy fruits from stdin']);
    refusedRun.child.stdin?.end('12\tfig\n');
    const refused = await finished(refusedRun);
    assert.notEqual(refused.code, 0);
    assert.match(refused.stderr, /42501: postern: /);
    assert.equal((await direct(DB, 'select count(*) from fruits where id = 12')).stdout.trim(), '0');
  });

  test('a client that disconnects mid-COPY leaves no rows behind and hurts no other session', { skip }, async () => {
    const copyIn = psql({ port: ports.wes! }, ['-c', '\\copy fruits from stdin']);
    copyIn.child.stdin?.write('20\thalf\n');
    await waitFor(async () => (await direct(ADMIN_DB, `select count(*) from pg_stat_activity where datname = '${DB}' and query ilike 'copy%' and state = 'active'`)).stdout.trim() === '1', { what: 'the COPY running upstream', timeoutMs: 10_000 });
    copyIn.child.kill('SIGKILL');
    await copyIn.exited;
    await waitFor(async () => (await direct(ADMIN_DB, `select count(*) from pg_stat_activity where datname = '${DB}' and query ilike 'copy%'`)).stdout.trim() === '0', { what: 'the upstream COPY gone', timeoutMs: 10_000 });
    assert.equal((await direct(DB, 'select count(*) from fruits where id = 20')).stdout.trim(), '0');
    const other = await finished(psql({ port: ports.wes! }, ['-tA', '-c', 'select count(*) from fruits']));
    assert.equal(other.code, 0, other.stderr);
  });
});
