// The admins' live view on a real server with a real connector and a `tls` socket: the
// overview's counts and its series, the live-connections stream (a snapshot first, then a
// connection opening, being killed and closing), the kill of a sign-in session, and the refusal
// of both to a person who is not an admin.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import https from 'node:https';
import net from 'node:net';
import tls from 'node:tls';
import type { IncomingMessage } from 'node:http';
import { createKeyAndCsr } from '../../src/ca/csr.js';
import { randomBytes } from 'node:crypto';
import { copyFile, writeFile } from 'node:fs/promises';
import { stringify } from 'yaml';
import { join } from 'node:path';
import pg from 'pg';
import { baseEnv, cleanupAll, spawnCli, startConnector, startServer, writeConnectorConfig } from '../helpers/processes.js';
import type { ServerHandle } from '../helpers/processes.js';
import { freePort } from '../helpers/util.js';
import { diffLive, eventStream, killedIds } from '../../src/control/live-api.js';
import { PassThrough, Writable } from 'node:stream';
import type { LiveConnectionRecord } from '../../src/store/index.js';
import { api, cookieHeader, httpsFetch, takeCookies } from '../helpers/https.js';
import type { HttpsResponse } from '../helpers/https.js';
import { tempDir, waitFor, withTimeout } from '../helpers/util.js';
import { hidden } from '../helpers/login.js';
import type { MeView } from '../../src/control/dashboard-types.js';
import type { KillResult, LiveEvent, OverviewView } from '../../src/control/live-types.js';

const PASSWORD = 'correct horse battery staple';

/** Server-sent events read off one response, each parsed from its `data:` line. */
class EventReader {
  readonly events: LiveEvent[] = [];
  #buffer = '';
  #waiters = new Set<() => void>();

  constructor(readonly res: IncomingMessage) {
    res.setEncoding('utf8');
    res.on('data', (chunk: string) => {
      this.#buffer += chunk;
      let end;
      while ((end = this.#buffer.indexOf('\n\n')) >= 0) {
        const block = this.#buffer.slice(0, end);
        this.#buffer = this.#buffer.slice(end + 2);
        const data = block.split('\n').find((line) => line.startsWith('data: '));
        if (data) this.events.push(JSON.parse(data.slice(6)) as LiveEvent);
      }
      for (const wake of this.#waiters) wake();
    });
  }

  /** The first event from `from` on that passes `test`, within `ms`. */
  async next<T extends LiveEvent['type']>(type: T, test: (event: Extract<LiveEvent, { type: T }>) => boolean = () => true, from = 0, ms = 5_000): Promise<Extract<LiveEvent, { type: T }>> {
    const find = () => this.events.slice(from).find((e): e is Extract<LiveEvent, { type: T }> => e.type === type && test(e as Extract<LiveEvent, { type: T }>));
    return withTimeout(new Promise((resolve) => {
      const check = () => {
        const found = find();
        if (!found) return;
        this.#waiters.delete(check);
        resolve(found);
      };
      this.#waiters.add(check);
      check();
    }), ms, `a "${type}" event (seen: ${this.events.map((e) => e.type).join(', ')})`);
  }
}

function openStream(server: ServerHandle, headers: Record<string, string>): Promise<IncomingMessage> {
  return new Promise((resolve, reject) => {
    const req = https.request({ host: '127.0.0.1', servername: 'localhost', port: server.port, ca: server.caPem, path: '/api/v1/connections/events', headers: { accept: 'text/event-stream', ...headers } }, resolve);
    req.on('error', reject);
    req.end();
  });
}

/** A browser's cookie jar on the control host, signed in through the form. */
async function browserSignIn(server: ServerHandle, email: string): Promise<{ cookie: string; csrf: string }> {
  const jar = new Map<string, string>();
  const take = (res: HttpsResponse) => takeCookies(jar, res);
  const cookie = () => cookieHeader(jar);
  const form = take(await httpsFetch({ port: server.port, ca: server.caPem, path: '/auth/login', headers: { accept: 'text/html' } }));
  const posted = take(await httpsFetch({
    port: server.port, ca: server.caPem, path: '/auth/login', method: 'POST', headers: { cookie: cookie(), 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams({ csrf: hidden(form.text, 'csrf')!, email, password: PASSWORD }).toString(),
  }));
  assert.equal(posted.status, 303, posted.text);
  const me = await httpsFetch({ port: server.port, ca: server.caPem, path: '/api/v1/me', headers: { cookie: cookie(), accept: 'application/json' } });
  assert.equal(me.status, 200, me.text);
  return { cookie: cookie(), csrf: me.json<MeView>().csrf! };
}

describe('the live API: overview, connection events, kills', () => {
  let server: ServerHandle;
  let echo: net.Server;

  const certificateFor = async (email: string) => {
    const { keyPem, csrPem } = await createKeyAndCsr(email);
    const res = await api(server, '/api/v1/certificates/tls', { method: 'POST', body: { csr: csrPem, email, ttl_seconds: 600 } });
    assert.equal(res.status, 201, res.text);
    return { key: keyPem, cert: res.json<{ certificate: string }>().certificate };
  };

  /** An open tls connection through the `db` socket, echoed once; `closed` settles when the edge cuts it. */
  const connect = async (identity: { key: string; cert: string }) => {
    const socket = tls.connect({ host: '127.0.0.1', port: server.port, servername: 'db.localhost', ca: server.caPem, ...identity });
    const closed = new Promise<number>((resolve) => socket.once('close', () => resolve(Date.now())));
    socket.on('error', () => undefined);
    await withTimeout(new Promise<void>((resolve, reject) => {
      socket.once('data', () => resolve());
      socket.once('close', () => reject(new Error('the edge closed the connection')));
      socket.once('secureConnect', () => socket.write('ping\n'));
    }), 10_000, 'the echo through the tls socket');
    return { socket, closed };
  };

  const overview = async () => {
    const res = await api(server, '/api/v1/overview');
    assert.equal(res.status, 200, res.text);
    return res.json<OverviewView>();
  };

  before(async () => {
    echo = net.createServer((socket) => socket.pipe(socket));
    await new Promise<void>((resolve) => echo.listen(0, '127.0.0.1', resolve));
    const echoPort = (echo.address() as net.AddressInfo).port;
    server = await startServer();
    for (const [email, groups] of [['ana@corp.example', []], ['eve@other.example', []], ['root@corp.example', ['admins']]] as const) {
      assert.equal((await api(server, '/api/v1/users', { method: 'POST', body: { email, password: PASSWORD, groups } })).status, 201);
    }
    for (const name of ['db', 'idle']) {
      const created = await api(server, '/api/v1/sockets', { method: 'POST', body: { name, type: 'tls', upstream: `tcp://127.0.0.1:${echoPort}`, allowed_email_domains: ['corp.example'] } });
      assert.equal(created.status, 201, created.text);
    }
    const token = await server.cli(['connector', 'token', 'create', '--name', 'live', '--socket', 'db']);
    const config = await writeConnectorConfig((await tempDir()).path, 'c.yaml', { server: server.url, token: token.stdout.trim(), sockets: [{ name: 'db', type: 'tls', upstream: `tcp://127.0.0.1:${echoPort}` }] });
    await startConnector(['connector', 'start', '--config', config], server.env);
  });

  after(async () => {
    await cleanupAll();
    await new Promise<void>((resolve) => echo?.close(() => resolve()));
  });

  test('the overview counts sockets online and offline, the connector\'s tunnels, live connections, and allows and denies over time', async () => {
    const empty = await waitFor(async () => {
      const view = await overview();
      return view.sockets.online === 1 && view;
    }, { what: 'the db socket online' });
    assert.deepEqual(empty.sockets, { total: 2, online: 1, offline: 1 });
    assert.equal(empty.connectors.total, 1);
    assert.equal(empty.connectors.connected, 1);
    assert.ok(empty.connectors.tunnels >= 1, JSON.stringify(empty.connectors));
    assert.equal(empty.connectors.top[0]?.tunnels, empty.connectors.tunnels);
    assert.equal(empty.liveConnections, 0);
    assert.equal(empty.series.buckets.length, 24);
    assert.equal(empty.series.bucketMinutes, 5);
    const starts = empty.series.buckets.map((b) => Date.parse(b.start));
    assert.ok(starts.every((s, i) => i === 0 || s - starts[i - 1]! === 300_000), 'buckets 5 minutes apart');
    assert.ok(Date.parse(empty.at) - starts[23]! < 300_000 && Date.parse(empty.at) >= starts[23]!, 'the last bucket holds now');

    const held = await connect(await certificateFor('ana@corp.example'));
    await assert.rejects(connect(await certificateFor('eve@other.example')));
    const busy = await waitFor(async () => {
      const view = await overview();
      return view.liveConnections === 1 && view.deniesLastHour >= 1 && view;
    }, { what: 'one live connection and a deny in the overview' });
    const last = busy.series.buckets.at(-1)!;
    assert.ok(last.allow >= empty.series.buckets.at(-1)!.allow + 1, JSON.stringify(busy.series.buckets.slice(-2)));
    assert.ok(busy.series.buckets.reduce((n, b) => n + b.deny, 0) >= 1);
    held.socket.destroy();
    await waitFor(async () => (await overview()).liveConnections === 0, { what: 'the connection gone from the overview' });
  });

  test('the stream starts with a snapshot, then says when a connection opens, is killed and closes; the kill cuts the client within a second', async () => {
    const first = await connect(await certificateFor('ana@corp.example'));
    await waitFor(async () => (await overview()).liveConnections === 1, { what: 'the first connection reported' });
    const res = await openStream(server, { authorization: `Bearer ${server.adminToken}` });
    try {
      assert.equal(res.statusCode, 200);
      assert.match(String(res.headers['content-type']), /^text\/event-stream/);
      assert.equal(res.headers['cache-control'], 'no-store');
      const stream = new EventReader(res);
      const snapshot = await stream.next('snapshot');
      assert.equal(stream.events[0]?.type, 'snapshot');
      assert.equal(snapshot.connections.length, 1);
      assert.equal(snapshot.connections[0]?.email, 'ana@corp.example');
      assert.equal(snapshot.connections[0]?.socket, 'db');
      assert.equal(snapshot.connections[0]?.session, null, 'an admin-issued certificate belongs to no sign-in');

      const second = await connect(await certificateFor('ana@corp.example'));
      const opened = await stream.next('opened');
      assert.equal(opened.connection.protocol, 'tls');
      assert.equal(opened.connection.clientIp, '127.0.0.1');
      assert.notEqual(opened.connection.id, snapshot.connections[0]?.id);

      second.socket.destroy();
      await stream.next('closed', (e) => e.id === opened.connection.id);

      const asked = Date.now();
      const killed = await api(server, `/api/v1/connections/${snapshot.connections[0]!.id}`, { method: 'DELETE' });
      assert.equal(killed.status, 204, killed.text);
      const cutAt = await withTimeout(first.closed, 1_000 + 2_000, 'the killed connection to close at the client');
      console.log(`# kill → client close: ${cutAt - asked} ms`);
      await stream.next('killed', (e) => e.ids.includes(snapshot.connections[0]!.id));
      await stream.next('closed', (e) => e.id === snapshot.connections[0]!.id);
    } finally {
      res.destroy();
    }
  });

  test('a session\'s kill cuts its connections and revokes it; the stream shows the sign-in each connection belongs to', async () => {
    const ana = await browserSignIn(server, 'ana@corp.example');
    const { keyPem, csrPem } = await createKeyAndCsr('ana@corp.example');
    const issued = await httpsFetch({
      port: server.port, ca: server.caPem, path: '/api/v1/me/certificates/tls', method: 'POST',
      headers: { cookie: ana.cookie, 'x-csrf-token': ana.csrf, 'content-type': 'application/json', accept: 'application/json' }, body: JSON.stringify({ csr: csrPem, ttl_seconds: 600 }),
    });
    assert.equal(issued.status, 201, issued.text);
    const held = await connect({ key: keyPem, cert: issued.json<{ certificate: string }>().certificate });
    const res = await openStream(server, { authorization: `Bearer ${server.adminToken}` });
    try {
      const stream = new EventReader(res);
      const connection = await waitFor(async () => {
        const snapshot = await stream.next('snapshot');
        return snapshot.connections[0] ?? (await stream.next('opened')).connection;
      }, { what: 'the connection in the stream' });
      assert.ok(connection.session, 'the connection carries its sign-in');
      assert.equal(connection.session.kind, 'browser');
      const killed = await api(server, `/api/v1/sessions/${connection.session.id}/kill`, { method: 'POST' });
      assert.equal(killed.status, 200, killed.text);
      assert.deepEqual(killed.json<KillResult>(), { killed: 1 });
      await withTimeout(held.closed, 3_000, 'the session\'s connection to close');
      await stream.next('closed', (e) => e.id === connection.id);
      const sessions = await api(server, '/api/v1/sessions?user=ana@corp.example');
      const session = sessions.json<{ sessions: { id: string; revokedAt: string | null }[] }>().sessions.find((s) => s.id === connection.session!.id);
      assert.ok(session?.revokedAt, 'the session is revoked');
      const again = await httpsFetch({ port: server.port, ca: server.caPem, path: '/api/v1/me', headers: { cookie: ana.cookie, accept: 'application/json' } });
      assert.equal(again.status, 401, 'the revoked browser session is signed out');
    } finally {
      res.destroy();
    }
  });

  test('a person who is not an admin gets 403 from the overview and the stream; an admin\'s browser gets both', async () => {
    const ana = await browserSignIn(server, 'ana@corp.example');
    const refused = await httpsFetch({ port: server.port, ca: server.caPem, path: '/api/v1/overview', headers: { cookie: ana.cookie, accept: 'application/json' } });
    assert.equal(refused.status, 403, refused.text);
    assert.equal(refused.json<{ code: string }>().code, 'admin_required');
    const stream = await openStream(server, { cookie: ana.cookie });
    assert.equal(stream.statusCode, 403);
    stream.destroy();
    const killing = await httpsFetch({ port: server.port, ca: server.caPem, path: '/api/v1/sessions/whatever/kill', method: 'POST', headers: { cookie: ana.cookie, 'x-csrf-token': ana.csrf, accept: 'application/json' } });
    assert.equal(killing.status, 403, killing.text);

    const root = await browserSignIn(server, 'root@corp.example');
    const allowed = await httpsFetch({ port: server.port, ca: server.caPem, path: '/api/v1/overview', headers: { cookie: root.cookie, accept: 'application/json' } });
    assert.equal(allowed.status, 200, allowed.text);
    const adminStream = await openStream(server, { cookie: root.cookie });
    try {
      assert.equal(adminStream.statusCode, 200);
      await new EventReader(adminStream).next('snapshot');
    } finally {
      adminStream.destroy();
    }
  });
});

describe('the live stream\'s pure parts', () => {
  const row = (id: string, bytesUp = 0, activity = ''): LiveConnectionRecord => ({
    id, edgeId: 'e', protocol: 'tls', socket: 'db', userId: 'u', email: 'a@x.example', sessionId: '', clientIp: '127.0.0.1', country: '',
    startedAt: '2026-01-01T00:00:00.000Z', bytesUp, bytesDown: 0, activity, activitySince: null, updatedAt: '2026-01-01T00:00:00.000Z',
  });

  test('a diff of two reads names what opened, what closed and whose counters or activity moved', () => {
    const before = new Map([['a', row('a')], ['b', row('b')], ['c', row('c')], ['e', row('e')]]);
    const diff = diffLive(before, [row('a'), row('c', 5), row('d'), row('e', 0, 'select pg_sleep(30)')]);
    assert.deepEqual(diff.opened.map((r) => r.id), ['d']);
    assert.deepEqual(diff.closed, ['b']);
    assert.deepEqual(diff.updated.map((r) => r.id), ['c', 'e']);
  });

  test('an event stream writes events and heartbeats, and cuts a client that stops reading instead of buffering for it', async () => {
    const received: string[] = [];
    const reader = new PassThrough();
    reader.on('data', (chunk: Buffer) => received.push(chunk.toString()));
    const stream = eventStream(reader, { heartbeatMs: 20, maxUnsentBytes: 1024 });
    stream.send({ type: 'closed', id: 'c1' });
    await waitFor(() => received.some((c) => c === ': heartbeat\n\n'), { what: 'a heartbeat', timeoutMs: 2_000, intervalMs: 10 });
    assert.equal(received[0], 'event: closed\ndata: {"type":"closed","id":"c1"}\n\n');
    stream.end();
    assert.ok(reader.destroyed);

    // A client that never reads: its writes never complete.
    const stuck = new Writable({ highWaterMark: 16, write: () => undefined });
    const slow = eventStream(stuck, { heartbeatMs: 60_000, maxUnsentBytes: 1024 });
    let ended = false;
    slow.onEnd(() => (ended = true));
    let sent = 0;
    while (!stuck.destroyed && sent < 1000) {
      slow.send({ type: 'closed', id: `connection-${sent++}` });
    }
    assert.ok(stuck.destroyed, 'the slow client is cut');
    assert.ok(ended);
    assert.ok(stuck.writableLength <= 1024 + 100, `at most the bound is held (${stuck.writableLength} bytes)`);
    assert.ok(sent < 100, `cut after ${sent} events`);
  });

  test('a kill event names one connection, or the list a user\'s or session\'s kill cut', () => {
    assert.deepEqual(killedIds({ connectionId: 'c1', details: {} }), ['c1']);
    assert.deepEqual(killedIds({ connectionId: '', details: { connections: ['c1', 7, 'c2'] } }), ['c1', 'c2']);
    assert.deepEqual(killedIds({ connectionId: '', details: {} }), []);
  });
});

describe('the live stream across nodes on one PostgreSQL', () => {
  const PG_URL = process.env.POSTERN_TEST_PG ?? 'postgres://postgres@127.0.0.1:5432/test';
  const schema = `postern_live_${randomBytes(5).toString('hex')}`;
  let unreachable: string | undefined;
  let control: ServerHandle;
  let edgePort: number;
  let echo: net.Server;

  before(async () => {
    const probe = new pg.Client({ connectionString: PG_URL, connectionTimeoutMillis: 3_000 });
    unreachable = await probe.connect().then(() => undefined, (err: Error) => err.message);
    await probe.end().catch(() => undefined);
    if (unreachable) return;
    echo = net.createServer((socket) => socket.pipe(socket));
    await new Promise<void>((resolve) => echo.listen(0, '127.0.0.1', resolve));
    const db = `${PG_URL}${PG_URL.includes('?') ? '&' : '?'}schema=${schema}`;
    control = await startServer({ extraArgs: ['--db', db, '--role', 'control'] });
    const edgeDir = (await tempDir('postern-live-edge-')).path;
    await copyFile(join(control.dataDir, 'master.key'), join(edgeDir, 'master.key'));
    edgePort = await freePort();
    const edge = spawnCli('edge node', ['server', '--role', 'edge', '--db', db, '--data-dir', edgeDir, '--listen', `127.0.0.1:${edgePort}`], baseEnv());
    await edge.waitForOutput(/Postern is running at/);
  });

  after(async () => {
    await cleanupAll();
    await new Promise<void>((resolve) => (echo ? echo.close(() => resolve()) : resolve()));
    if (unreachable) return;
    const client = new pg.Client({ connectionString: PG_URL });
    await client.connect();
    await client.query(`drop schema if exists "${schema}" cascade`);
    await client.end();
  });

  test('the control node streams a connection held by the edge node, and its kill cuts it there', async (t) => {
    if (unreachable) {
      if (process.env.CI === 'true') assert.fail(`PostgreSQL is unreachable at ${PG_URL}: ${unreachable}`);
      return t.skip(`PostgreSQL unreachable at ${PG_URL}: ${unreachable}`);
    }
    const upstream = `tcp://127.0.0.1:${(echo.address() as net.AddressInfo).port}`;
    assert.equal((await api(control, '/api/v1/sockets', { method: 'POST', body: { name: 'db', type: 'tls', upstream } })).status, 201);
    assert.equal((await api(control, '/api/v1/users', { method: 'POST', body: { email: 'ana@corp.example' } })).status, 201);
    const token = await control.cli(['connector', 'token', 'create', '--name', 'edge-db', '--socket', 'db']);
    // The connector dials the edge node for its tunnels; the control node only enrolls it.
    const config = join((await tempDir()).path, 'c.yaml');
    await writeFile(config, stringify({ server: control.url, edges: [`https://localhost:${edgePort}`], token: token.stdout.trim(), credentials: './creds.json', sockets: [{ name: 'db', type: 'tls', upstream }] }));
    await startConnector(['connector', 'start', '--config', config], control.env);
    const { keyPem, csrPem } = await createKeyAndCsr('ana@corp.example');
    const issued = await api(control, '/api/v1/certificates/tls', { method: 'POST', body: { csr: csrPem, email: 'ana@corp.example', ttl_seconds: 600 } });
    assert.equal(issued.status, 201, issued.text);

    const res = await openStream(control, { authorization: `Bearer ${control.adminToken}` });
    try {
      const stream = new EventReader(res);
      assert.deepEqual((await stream.next('snapshot')).connections, []);
      const socket = tls.connect({ host: '127.0.0.1', port: edgePort, servername: 'db.localhost', ca: control.caPem, key: keyPem, cert: issued.json<{ certificate: string }>().certificate });
      socket.on('error', () => undefined);
      const closed = new Promise<number>((resolve) => socket.once('close', () => resolve(Date.now())));
      await withTimeout(new Promise<void>((resolve) => {
        socket.once('secureConnect', () => socket.write('ping\n'));
        socket.once('data', () => resolve());
      }), 15_000, 'the echo through the edge node');
      const opened = await stream.next('opened', () => true, 0, 10_000);
      assert.notEqual(opened.connection.edgeId, '');
      const asked = Date.now();
      assert.equal((await api(control, `/api/v1/connections/${opened.connection.id}`, { method: 'DELETE' })).status, 204);
      const cutAt = await withTimeout(closed, 1_000 + 2_000, 'the kill to reach the edge node');
      t.diagnostic(`kill on the control node → client close at the edge node: ${cutAt - asked} ms`);
      await stream.next('killed', (e) => e.ids.includes(opened.connection.id));
      await stream.next('closed', (e) => e.id === opened.connection.id);
    } finally {
      res.destroy();
    }
  });
});
