// E2E: a control node and an edge node on one PostgreSQL (changes reach the edge through the
// change feed), and connector certificates renewed at half life without dropping the socket.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { copyFile, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import pg from 'pg';
import { stringify } from 'yaml';
import { baseEnv, cleanupAll, spawnCli, startConnector, startServer } from '../helpers/processes.js';
import type { Managed, ServerHandle } from '../helpers/processes.js';
import { api, httpsFetch } from '../helpers/https.js';
import { startUpstream } from '../helpers/upstream.js';
import type { Upstream } from '../helpers/upstream.js';
import { freePort, tempDir, waitFor, withTimeout } from '../helpers/util.js';
import net from 'node:net';
import tls from 'node:tls';
import { createKeyAndCsr } from '../../src/ca/csr.js';

const PG_URL = process.env.POSTERN_TEST_PG ?? 'postgres://postgres@127.0.0.1:5432/test';

async function postgresReachable(): Promise<string | undefined> {
  const client = new pg.Client({ connectionString: PG_URL, connectionTimeoutMillis: 3_000 });
  try {
    await client.connect();
    await client.query('select 1');
    return undefined;
  } catch (err) {
    return err instanceof Error ? err.message : String(err);
  } finally {
    await client.end().catch(() => undefined);
  }
}

async function createJoinToken(server: ServerHandle, name: string, socket: string): Promise<string> {
  const token = await server.cli(['connector', 'token', 'create', '--name', name, '--socket', socket]);
  assert.equal(token.code, 0, token.stderr);
  return token.stdout.trim();
}

describe('control and edge nodes on one PostgreSQL', () => {
  const schema = `postern_e2e_${randomBytes(5).toString('hex')}`;
  let unreachable: string | undefined;
  let control: ServerHandle;
  let edge: Managed;
  let edgePort: number;
  let upstream: Upstream;

  before(async () => {
    unreachable = await postgresReachable();
    if (unreachable) return;
    upstream = await startUpstream();
    const db = `${PG_URL}${PG_URL.includes('?') ? '&' : '?'}schema=${schema}`;
    control = await startServer({ extraArgs: ['--db', db, '--role', 'control'] });
    // An edge node shares the store and the master key (which unseals the CA), nothing else.
    const edgeDir = (await tempDir('postern-e2e-edge-')).path;
    await copyFile(join(control.dataDir, 'master.key'), join(edgeDir, 'master.key'));
    edgePort = await freePort();
    edge = spawnCli('edge node', ['server', '--role', 'edge', '--db', db, '--data-dir', edgeDir, '--listen', `127.0.0.1:${edgePort}`], baseEnv());
    await edge.waitForOutput(/Postern is running at/);
  });

  after(async () => {
    await cleanupAll();
    await upstream?.close();
    if (unreachable) return;
    const client = new pg.Client({ connectionString: PG_URL });
    await client.connect();
    await client.query(`drop schema if exists "${schema}" cascade`);
    await client.end();
  });

  test('a socket created on the control node is served by the edge node, and its deletion reaches it', async (t) => {
    if (unreachable) {
      if (process.env.CI === 'true') assert.fail(`PostgreSQL is unreachable at ${PG_URL}: ${unreachable}`);
      t.skip(`PostgreSQL unreachable at ${PG_URL}: ${unreachable}`);
      return;
    }
    const created = await api(control, '/api/v1/sockets', { method: 'POST', body: { name: 'shared', type: 'http', upstream: upstream.url } });
    assert.equal(created.status, 201, created.text);
    const dir = (await tempDir()).path;
    const config = join(dir, 'connector.yaml');
    await writeFile(config, stringify({
      server: control.url,
      edges: [`https://localhost:${edgePort}`],
      token: await createJoinToken(control, 'multinode', 'shared'),
      credentials: './creds.json',
      sockets: [{ name: 'shared', type: 'http', upstream: upstream.url }],
    }));
    await startConnector(['connector', 'start', '--config', config], control.env);

    const viaEdge = () => httpsFetch({ port: edgePort, ca: control.caPem, host: 'shared.localhost', path: '/hello' });
    const answered = await viaEdge();
    assert.equal(answered.status, 200, answered.text);
    assert.equal(answered.json<{ url: string }>().url, '/hello');

    const controlAnswer = await httpsFetch({ port: control.port, ca: control.caPem, host: 'shared.localhost' });
    assert.equal(controlAnswer.status, 503, 'the control node holds no tunnel for it');

    assert.equal((await api(control, '/api/v1/sockets/shared', { method: 'DELETE' })).status, 204);
    await waitFor(async () => (await viaEdge()).status === 404, { timeoutMs: 10_000, what: 'the edge to learn of the deletion' });
  });
  test('a stream held by the edge node is listed and killed from the control node, and cut there by a policy applied on the control node', async (t) => {
    if (unreachable) {
      if (process.env.CI === 'true') assert.fail(`PostgreSQL is unreachable at ${PG_URL}: ${unreachable}`);
      t.skip(`PostgreSQL unreachable at ${PG_URL}: ${unreachable}`);
      return;
    }
    const echo = net.createServer((socket) => socket.pipe(socket));
    await new Promise<void>((resolve) => echo.listen(0, '127.0.0.1', resolve));
    t.after(() => new Promise<void>((resolve) => echo.close(() => resolve())));
    const echoUpstream = `tcp://127.0.0.1:${(echo.address() as net.AddressInfo).port}`;
    assert.equal((await api(control, '/api/v1/sockets', { method: 'POST', body: { name: 'db', type: 'tls', upstream: echoUpstream } })).status, 201);
    assert.equal((await api(control, '/api/v1/users', { method: 'POST', body: { email: 'ana@corp.example' } })).status, 201);
    const dir = (await tempDir()).path;
    const config = join(dir, 'connector.yaml');
    await writeFile(config, stringify({
      server: control.url, edges: [`https://localhost:${edgePort}`], token: await createJoinToken(control, 'multinode-db', 'db'), credentials: './creds.json',
      sockets: [{ name: 'db', type: 'tls', upstream: echoUpstream }],
    }));
    await startConnector(['connector', 'start', '--config', config], control.env);
    const { keyPem, csrPem } = await createKeyAndCsr('ana@corp.example');
    const issued = await api(control, '/api/v1/certificates/tls', { method: 'POST', body: { csr: csrPem, email: 'ana@corp.example', ttl_seconds: 600 } });
    assert.equal(issued.status, 201, issued.text);
    const identity = { key: keyPem, cert: issued.json<{ certificate: string }>().certificate };
    const openStream = () => withTimeout(new Promise<tls.TLSSocket>((resolve, reject) => {
      const socket = tls.connect({ host: '127.0.0.1', port: edgePort, servername: 'db.localhost', ca: control.caPem, ...identity });
      socket.once('secureConnect', () => socket.write('ping\n'));
      socket.once('data', () => resolve(socket));
      socket.once('error', reject);
    }), 15_000, 'a stream through the edge node');
    const closed = (socket: tls.TLSSocket) => new Promise<void>((resolve) => (socket.destroyed ? resolve() : socket.once('close', () => resolve())));

    const first = await openStream();
    const listed = await waitFor(async () => (await api(control, '/api/v1/connections?socket=db')).json<{ connections: { id: string; edgeId: string }[] }>().connections[0], { what: 'the edge\'s connection, seen from the control node' });
    const firstClosed = closed(first);
    assert.equal((await control.cli(['sessions', 'kill', listed.id])).code, 0);
    await withTimeout(firstClosed, 5_000, 'the kill to reach the edge node');
    const events = async (type: string) => (await api(control, `/api/v1/audit?type=${type}&socket=db`)).json<{ events: { at: string; connectionId: string }[] }>().events;
    const killedAt = (await events('connection.killed')).find((e) => e.connectionId === listed.id)!.at;
    const closedAt = await waitFor(async () => (await events('connection.close')).find((e) => e.connectionId === listed.id)?.at, { what: 'the close on the edge node' });
    t.diagnostic(`the edge node cut the stream ${Date.parse(closedAt) - Date.parse(killedAt)} ms after the kill was recorded on the control node`);

    const second = await openStream();
    const secondClosed = closed(second);
    await writeFile(join(dir, 'deny.yaml'), 'name: no-db\nsockets: [db]\nrules:\n  - effect: deny\n');
    assert.equal((await control.cli(['policy', 'apply', '-f', join(dir, 'deny.yaml')])).code, 0);
    await withTimeout(secondClosed, 5_000, 'the policy to reach the edge node');
    const denied = await waitFor(async () => (await api(control, '/api/v1/audit?type=access.denied&socket=db')).json<{ events: { rule: string }[] }>().events[0], { what: 'the edge\'s audit event, read on the control node' });
    assert.equal(denied.rule, 'no-db#1');
  });
});

describe('connector certificate renewal', () => {
  let server: ServerHandle;
  let upstream: Upstream;

  before(async () => {
    upstream = await startUpstream();
    server = await startServer({ extraArgs: ['--connector-cert-ttl', '8s'] });
  });

  after(async () => {
    await cleanupAll();
    await upstream?.close();
  });

  test('renews at half life with a new key, and reconnects with the new certificate', async () => {
    assert.equal((await api(server, '/api/v1/sockets', { method: 'POST', body: { name: 'renewing', type: 'http', upstream: upstream.url } })).status, 201);
    const dir = (await tempDir()).path;
    const config = join(dir, 'connector.yaml');
    await writeFile(config, stringify({
      server: server.url, token: await createJoinToken(server, 'renewing', 'renewing'), credentials: './creds.json',
      sockets: [{ name: 'renewing', type: 'http', upstream: upstream.url }],
    }));
    const connector = await startConnector(['connector', 'start', '--config', config], server.env);
    const first = JSON.parse(await readFile(join(dir, 'creds.json'), 'utf8')) as { certPem: string; keyPem: string };

    const renewed = await waitFor(async () => {
      const now = JSON.parse(await readFile(join(dir, 'creds.json'), 'utf8')) as { certPem: string; keyPem: string };
      return now.certPem !== first.certPem ? now : undefined;
    }, { timeoutMs: 15_000, what: 'the credentials file to hold a renewed certificate' });
    assert.notEqual(renewed.keyPem, first.keyPem, 'a fresh key, not the old one re-signed');
    await waitFor(() => /certificate renewed/.test(connector.logs()), { what: 'the renewal in the connector log' });

    // Past the first certificate's expiry, a restarted connector can only connect with the renewed one.
    await waitFor(async () => {
      const { connectors } = (await api(server, '/api/v1/connectors')).json<{ connectors: { id: string; certNotAfter: string }[] }>();
      const record = connectors.find((c) => c.id === connector.id);
      return record && Date.parse(record.certNotAfter) > Date.now() + 2_000 ? record : undefined;
    }, { timeoutMs: 10_000, what: 'a certificate on record that is still valid' });
    await connector.stop();
    const again = await startConnector(['connector', 'start', '--config', config], server.env);
    assert.equal(again.id, connector.id);
    const res = await httpsFetch({ port: server.port, ca: server.caPem, host: 'renewing.localhost' });
    assert.equal(res.status, 200, res.text);
  });
});
