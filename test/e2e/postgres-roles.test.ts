// E2E: upstream roles of `postgres` sockets come from policy (what.database.users), never from
// the client: real server, real connector, real psql and node-postgres, the machine's PostgreSQL
// with two roles of this run, and a private PostgreSQL cluster with TLS for client-certificate
// logins upstream (verify-full and verify: ca). Also a socket's default database and
// `postern client db --print-env`, with which psql connects straight to the edge.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import pg from 'pg';
import { auditEvents, cleanupAll, runCli, waitForAudit } from '../helpers/processes.js';
import type { ServerHandle } from '../helpers/processes.js';
import { tempDir, waitFor, withTimeout } from '../helpers/util.js';
import { pgClusterUnavailable, startPgCluster } from '../helpers/pg-cluster.js';
import type { PgCluster } from '../helpers/pg-cluster.js';
import { ADMIN_DB, PG_USER, createDatabase, direct, dropDatabase, issueCertificate, postgresUnreachable, runPsql, skipFor, startPostgresEdge, viaRelay } from '../helpers/postgres.js';
import type { PolicyYaml, PsqlRun } from '../helpers/postgres.js';

const DB = `postern_pgroles_${process.pid}`;
const RO = `postern_ro_${process.pid}`;
const RW = `postern_rw_${process.pid}`;
const email = (person: string) => `${person}@corp.example`;

/** psql in the environment without the caller's own PG* settings, so only what a test sets (`settings`) reaches it. */
function cleanPsql(args: readonly string[], settings: NodeJS.ProcessEnv = {}): Promise<PsqlRun> {
  const env = Object.fromEntries(Object.entries(process.env).filter(([name]) => !name.startsWith('PG')));
  return runPsql(args, { env: { ...env, ...settings } });
}

describe('postgres sockets: roles from policy, upstream client certificates, --database, --print-env', async () => {
  const skip = skipFor('postgres role tests', await postgresUnreachable());
  const unavailable = await pgClusterUnavailable();
  const noCluster = skipFor('postgres role tests', unavailable && `a private PostgreSQL cluster cannot run: ${unavailable}`);
  const skipAll = skip || noCluster;

  let server: ServerHandle;
  let cluster: PgCluster;
  const certs: Record<string, { cert: string; key: string }> = {};
  let relays: Record<string, number> = {};
  let laptopEnv: NodeJS.ProcessEnv = {};
  let policies: PolicyYaml[] = [];
  let applyPolicy: (policy: PolicyYaml) => Promise<void>;

  /** node-postgres straight to the edge's main port with `person`'s certificate (SNI picks the socket). */
  const connect = async (person: string, socket: string, database: string, role?: string): Promise<pg.Client> => {
    const client = new pg.Client({
      host: '127.0.0.1', port: server.port, user: email(person), database, connectionTimeoutMillis: 10_000,
      ssl: { servername: `${socket}.localhost`, ca: server.caPem, cert: certs[person]!.cert, key: certs[person]!.key },
      ...(role !== undefined ? { options: `-c postern.role=${role}` } : {}),
    });
    await client.connect();
    return client;
  };
  const query = async (person: string, socket: string, database: string, sql: string, role?: string) => {
    const client = await connect(person, socket, database, role);
    try {
      return (await client.query(sql)).rows as Record<string, unknown>[];
    } finally {
      await client.end();
    }
  };
  const refusal = async (person: string, socket: string, database: string, role?: string) => {
    const err = await connect(person, socket, database, role).then(async (client) => {
      await client.end();
      return undefined;
    }, (e: { code?: string; message: string }) => e);
    assert.ok(err, `${person} on ${socket} as ${role ?? '(no role)'} should be refused`);
    return err;
  };

  before(async () => {
    if (skipAll) return;
    await createDatabase(DB, 'create table t (id int)');
    for (const role of [RO, RW]) await direct(ADMIN_DB, `drop role if exists ${role}`);
    assert.equal((await direct(ADMIN_DB, `create role ${RO} login; create role ${RW} login`)).code, 0);
    assert.equal((await direct(DB, `grant select on t to ${RO}; grant all on t to ${RW}`)).code, 0);

    cluster = await startPgCluster({
      hosts: ['127.0.0.1', '127.0.0.2'], certifiedHost: '127.0.0.1',
      hba: ['hostssl all pwuser 127.0.0.0/8 scram-sha-256', 'hostssl all all 127.0.0.0/8 cert'],
    });
    await cluster.psql(`set password_encryption = 'scram-sha-256'; create role reporting login; create role pwuser login password 'pw-secret'; create role strict login`);
    const reporting = await cluster.clientCertificate('reporting');
    const strict = await cluster.clientCertificate('strict');
    const passwords = (await tempDir()).path;
    const passwordFile = join(passwords, 'pwuser.pass');
    await writeFile(passwordFile, 'pw-secret\n', { mode: 0o600 });

    policies = [
      {
        name: 'roles-db', namespace: 'corp', sockets: ['orders'], rules: [
          { name: 'analysts', effect: 'allow', who: { group: ['analysts'] }, what: { database: { names: [DB], users: [RO], read_only: true } } },
          { name: 'engineers', effect: 'allow', who: { email: [email('wes')] }, what: { database: { names: [DB], users: [RW, 'ghost'] } } },
          { name: 'dbas', effect: 'allow', who: { email: [email('dba')] }, what: { database: { names: [DB] } } },
        ],
      },
      {
        name: 'vault-db', namespace: 'corp', sockets: ['vault', 'vault2'], rules: [
          { name: 'reporters', effect: 'allow', who: { email: [email('ana')] }, what: { database: {} } },
          { name: 'scram', effect: 'allow', who: { email: [email('wes')] }, what: { database: { users: ['pwuser'] } } },
          { name: 'strict', effect: 'allow', who: { email: [email('dba')] }, what: { database: { users: ['strict'] } } },
        ],
      },
    ];
    const tag = ['--tag', 'namespace=corp'];
    const edge = await startPostgresEdge({
      people: [{ email: email('ana'), groups: ['analysts'] }, { email: email('wes'), groups: [] }, { email: email('dba'), groups: [] }],
      sockets: [
        { name: 'orders', flags: [...tag, '--database', DB], login: { user: PG_USER, roles: { [RO]: { password_env: 'PG_RO_PASSWORD' }, [RW]: {} } } },
        { name: 'vault', upstream: `tcp://127.0.0.1:${cluster.port}`, flags: tag, login: { user: 'reporting', ...reporting, ca: cluster.caFile, roles: { pwuser: { password_file: passwordFile, ca: cluster.caFile } } } },
        { name: 'vault2', upstream: `tcp://127.0.0.2:${cluster.port}`, flags: tag, login: { user: 'reporting', ...reporting, ca: cluster.caFile, verify: 'ca', roles: { strict: { ...strict, ca: cluster.caFile } } } },
      ],
      policies,
      relays: { ana: { email: email('ana') }, 'ana-asks-rw': { email: email('ana'), flags: ['--role', RW] } },
      connectorEnv: { PG_RO_PASSWORD: 'unused under trust' },
    });
    ({ server, relays, applyPolicy } = edge);
    laptopEnv = edge.laptops[email('ana')]!;
    for (const person of ['ana', 'wes', 'dba']) certs[person] = await issueCertificate(server, email(person));
  });

  after(async () => {
    await cleanupAll();
    await cluster?.stop();
    if (!skip) {
      await dropDatabase(DB);
      await direct(ADMIN_DB, `drop role if exists ${RO}; drop role if exists ${RW}`);
    }
  });

  test('psql with no database named: the socket\'s default database, as the role policy maps analysts to', { skip: skipAll }, async () => {
    const run = await cleanPsql([...viaRelay(relays.ana!), '-c', 'select current_user, current_database()']);
    assert.equal(run.code, 0, run.stderr);
    assert.equal(run.stdout.trim(), `${RO}|${DB}`);
    const started = await waitForAudit(server, ['--type', 'db.session.start'], (e) => e.actor === email('ana') && e.details.role === RO, 'the session start with its role');
    assert.equal(started.details.database, DB);
    const audited = await waitForAudit(server, ['--type', 'db.query'], (e) => e.actor === email('ana') && e.details.statement === 'select current_user, current_database()', 'the query with its role');
    assert.equal(audited.details.role, RO);
    const listed = await server.cli(['socket', 'ls']);
    assert.match(listed.stdout, new RegExp(`orders\\s.*\\s${DB}\\s`));
    assert.match((await server.cli(['socket', 'show', 'orders'])).stdout, new RegExp(`database:\\s+${DB}`));
  });

  test('a role no rule maps the person to is refused at startup with 28000 naming the rules', { skip: skipAll }, async () => {
    const run = await cleanPsql([...viaRelay(relays['ana-asks-rw']!, DB), '-c', 'select 1']);
    assert.notEqual(run.code, 0);
    assert.match(run.stderr, new RegExp(`FATAL: {2}postern: denied: no rule allows this .*corp/roles-db#analysts: role ${RW} is not one of ${RO}`));
    const refused = await refusal('dba', 'orders', DB, RO);
    assert.equal(refused.code, '28000');
    assert.match(refused.message, new RegExp(`corp/roles-db#dbas: role ${RO} was asked for; the rule maps no role`));
    const denied = await waitForAudit(server, ['--type', 'access.denied'], (e) => e.actor === email('ana') && e.details.askedRole === RW, 'the refusal with the asked role');
    assert.equal(denied.socket, 'orders');
  });

  test('without asking, the rule\'s first role; a listed role the connector does not know is refused by the connector', { skip: skipAll }, async () => {
    assert.deepEqual(await query('wes', 'orders', DB, 'insert into t values (1) returning current_user as who'), [{ who: RW }]);
    assert.deepEqual(await query('wes', 'orders', DB, 'select current_user as who', RW), [{ who: RW }]);
    const ghost = await refusal('wes', 'orders', DB, 'ghost');
    assert.equal(ghost.code, '28000');
    assert.match(ghost.message, /^postern connector: role ghost is not configured on connector \S+ \(socket "orders": add it under postgres\.roles\)$/);
    await waitForAudit(server, ['--type', 'access.denied'], (e) => e.actor === email('wes') && /the upstream login failed: .*role ghost is not configured/.test(e.reason ?? ''), 'the connector\'s refusal in the audit');
    // no rule with users: the connector's default login
    assert.deepEqual(await query('dba', 'orders', DB, 'select current_user as who'), [{ who: PG_USER }]);
  });

  test('upstream login with a client certificate (verify-full), and a password role over verified TLS', { skip: skipAll }, async () => {
    const [viaCert] = await query('ana', 'vault', 'postgres', 'select current_user as who, ssl, client_dn from pg_stat_ssl where pid = pg_backend_pid()');
    assert.deepEqual(viaCert, { who: 'reporting', ssl: true, client_dn: '/CN=reporting' });
    const [viaScram] = await query('wes', 'vault', 'postgres', 'select current_user as who, ssl from pg_stat_ssl where pid = pg_backend_pid()');
    assert.deepEqual(viaScram, { who: 'pwuser', ssl: true });
  });

  test('verify: ca accepts an upstream address its certificate does not name; verify-full refuses it', { skip: skipAll }, async () => {
    assert.deepEqual(await query('ana', 'vault2', 'postgres', 'select current_user as who'), [{ who: 'reporting' }]);
    const strict = await refusal('dba', 'vault2', 'postgres');
    assert.match(strict.message, /^postern connector: TLS with 127\.0\.0\.2:\d+ failed: .*127\.0\.0\.2/);
    await waitForAudit(server, ['--type', 'access.denied'], (e) => e.actor === email('dba') && e.socket === 'vault2', 'the failed upstream TLS in the audit');
  });

  test('client db --print-env: psql with those variables connects straight to the edge', { skip: skipAll }, async () => {
    const printed = await runCli(['client', 'db', '--host', 'orders.localhost', '--print-env'], laptopEnv);
    assert.equal(printed.code, 0, printed.stderr);
    const variables = Object.fromEntries([...printed.stdout.matchAll(/^export (PG[A-Z]+)=(.*)$/gm)].map((m) => [m[1]!, m[2]!.replace(/^'(.*)'$/, '$1')]));
    assert.deepEqual(Object.keys(variables).sort(), ['PGDATABASE', 'PGHOST', 'PGHOSTADDR', 'PGPORT', 'PGSSLCERT', 'PGSSLKEY', 'PGSSLMODE', 'PGSSLROOTCERT', 'PGUSER']);
    assert.deepEqual([variables.PGHOST, variables.PGHOSTADDR, variables.PGPORT, variables.PGSSLMODE, variables.PGUSER, variables.PGDATABASE], ['orders.localhost', '127.0.0.1', String(server.port), 'verify-full', email('ana'), DB]);
    for (const file of [variables.PGSSLCERT!, variables.PGSSLKEY!, variables.PGSSLROOTCERT!]) assert.equal((await stat(file)).mode & 0o777, 0o600, file);
    const run = await cleanPsql(['-c', 'select current_user, current_database()'], variables);
    assert.equal(run.code, 0, run.stderr);
    assert.equal(run.stdout.trim(), `${RO}|${DB}`);
    const writes = await cleanPsql(['-c', 'insert into t values (2)'], variables);
    assert.match(writes.stderr, /postern: .* \(read-only by corp\/roles-db#analysts\)/, 'still read-only');
    const asking = await cleanPsql(['-c', 'select 1'], { ...variables, PGOPTIONS: `-c postern.role=${RW}` });
    assert.match(asking.stderr, new RegExp(`role ${RW} is not one of ${RO}`));
    assert.ok((await auditEvents(server, ['--type', 'db.session.start'])).some((e) => e.actor === email('ana') && e.details.role === RO && e.details.user === email('ana')));
  });

  test('a policy that maps the person to another role ends their live session with the reason', { skip: skipAll }, async () => {
    const client = await connect('ana', 'orders', DB);
    client.on('error', () => undefined);
    const sleeping = client.query('select pg_sleep(30)').then(() => undefined, (err: { code?: string; message: string }) => err);
    await waitFor(async () => (await direct(ADMIN_DB, `select count(*) from pg_stat_activity where datname = '${DB}' and usename = '${RO}' and query = 'select pg_sleep(30)'`)).stdout.trim() === '1', { what: 'pg_sleep running as the mapped role', timeoutMs: 10_000 });
    const [roles] = policies;
    const remapped = structuredClone(roles!);
    remapped.rules[0]!.what.database.users = [RW];
    const changedAt = Date.now();
    await applyPolicy(remapped);
    try {
      const ended = await withTimeout(sleeping, 5_000, 'the session ends after the policy change');
      process.stderr.write(`role remap → session end: ${Date.now() - changedAt} ms\n`);
      assert.equal(ended?.code, '57P01');
      assert.match(ended?.message ?? '', new RegExp(`postern: session ended: corp/roles-db#analysts now maps ana@corp\\.example to role ${RW}`));
    } finally {
      await client.end().catch(() => undefined);
      await applyPolicy(roles!);
    }
  });
});
