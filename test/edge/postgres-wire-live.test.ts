// The wire codecs against the machine's real PostgreSQL and real clients: a loopback relay
// decodes both directions and forwards only what it re-framed (`raw` of each decoded message),
// so node-postgres (extended protocol with parameters), psql (SSLRequest refused, simple query,
// COPY both ways) and a CancelRequest only work if the framing is byte-exact. Every message
// must also decode to its typed form. Unreachable PostgreSQL: fails under CI=true, else skips.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { once } from 'node:events';
import net from 'node:net';
import { after, before, test } from 'node:test';
import pg from 'pg';
import { commandTagRows, decodeBackend } from '../../src/pgwire/backend.js';
import type { BackendMessage } from '../../src/pgwire/backend.js';
import { decodeFrontend } from '../../src/pgwire/frontend.js';
import type { FrontendMessage } from '../../src/pgwire/frontend.js';
import { PgDecoder, encodeStartup } from '../../src/pgwire/wire.js';
import type { StartupPacket } from '../../src/pgwire/wire.js';
import { waitFor, withTimeout } from '../helpers/util.js';

const url = new URL(process.env.POSTERN_TEST_PG ?? 'postgres://postgres@127.0.0.1:5432/test');
const upstream = { host: url.hostname, port: Number(url.port || 5432) };

interface Seen {
  startups: StartupPacket[];
  frontend: FrontendMessage[];
  backend: BackendMessage[];
  errors: Error[];
}

let relay: net.Server;
let relayPort = 0;
let reachable = true;
const seen: Seen = { startups: [], frontend: [], backend: [], errors: [] };
const open = new Set<net.Socket>();

function relayConnection(client: net.Socket): void {
  const server = net.connect(upstream);
  open.add(client).add(server);
  const fail = (err: Error) => {
    seen.errors.push(err);
    client.destroy();
    server.destroy();
  };
  const fromServer = new PgDecoder({ side: 'backend' }, {
    encryptionResponse: (accepted) => {
      if (accepted) fail(new Error('the test server accepted TLS; this relay cannot read it'));
      else client.write('N');
    },
    message: (packet) => {
      seen.backend.push(decodeBackend(packet));
      client.write(packet.raw);
    },
  });
  const fromClient = new PgDecoder({ side: 'frontend' }, {
    startup: (packet, raw) => {
      seen.startups.push(packet);
      if (packet.type === 'SSLRequest' || packet.type === 'GSSENCRequest') fromServer.expectEncryptionResponse();
      server.write(raw);
    },
    message: (packet) => {
      seen.frontend.push(decodeFrontend(packet));
      server.write(packet.raw);
    },
  });
  const guard = (decoder: PgDecoder) => (chunk: Buffer) => {
    try {
      decoder.push(chunk);
    } catch (err) {
      fail(err as Error);
    }
  };
  client.on('data', guard(fromClient));
  server.on('data', guard(fromServer));
  client.on('end', () => server.end());
  server.on('end', () => client.end());
  for (const s of [client, server]) {
    s.on('error', () => { client.destroy(); server.destroy(); });
    s.on('close', () => open.delete(s));
  }
}

before(async () => {
  const probe = new pg.Client({ connectionString: url.href, connectionTimeoutMillis: 5000 });
  try {
    await probe.connect();
    await probe.end();
  } catch (err) {
    reachable = false;
    const message = `PostgreSQL unreachable at ${upstream.host}:${upstream.port} (set POSTERN_TEST_PG to change): ${(err as Error).message}`;
    if (process.env.CI === 'true') assert.fail(message);
    console.log(`# ${message}`);
    return;
  }
  relay = net.createServer(relayConnection);
  relay.listen(0, '127.0.0.1');
  await once(relay, 'listening');
  relayPort = (relay.address() as net.AddressInfo).port;
});

after(async () => {
  for (const s of open) s.destroy();
  if (relay) await new Promise((resolve) => relay.close(resolve));
});

function relayUrl(): string {
  const through = new URL(url.href);
  through.hostname = '127.0.0.1';
  through.port = String(relayPort);
  return through.href;
}

function psql(args: string[], input?: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = execFile('psql', [relayUrl().replace(/\?.*$/, '') + '?sslmode=prefer', '-X', '-q', '-At', '-v', 'ON_ERROR_STOP=1', ...args], { timeout: 15_000 }, (err, stdout, stderr) => {
      if (err) reject(new Error(`psql failed: ${err.message}\n${stderr}`));
      else resolve(stdout);
    });
    if (input !== undefined) child.stdin!.end(input);
  });
}

test('postgres wire live: node-postgres with parameters, many rows and an error, through a relay that forwards only re-framed messages', async (t) => {
  if (!reachable) return t.skip('PostgreSQL unreachable');
  const client = new pg.Client({ connectionString: relayUrl() });
  await withTimeout(client.connect(), 10_000, 'connecting through the relay');
  try {
    const one = await client.query('SELECT $1::int + 1 AS n, $2::text AS label, $3::text AS nothing', [41, 'café', null]);
    assert.deepEqual(one.rows, [{ n: 42, label: 'café', nothing: null }]);
    const many = await client.query({ text: 'SELECT g, repeat($1, 50) AS pad FROM generate_series(1, 20000) g', values: ['x'] });
    assert.equal(many.rowCount, 20000);
    await assert.rejects(client.query('SELECT * FROM no_such_table_here'), (err: { code?: string }) => err.code === '42P01');
    assert.deepEqual((await client.query('SELECT 1 AS still')).rows, [{ still: 1 }], 'the connection survives the error');
  } finally {
    await client.end();
  }
  assert.deepEqual(seen.errors, []);
  const types = new Set(seen.frontend.map((m) => m.type));
  for (const type of ['Parse', 'Bind', 'Describe', 'Execute', 'Sync', 'Terminate']) assert.ok(types.has(type as FrontendMessage['type']), `client sent ${type}`);
  const bind = seen.frontend.find((m): m is Extract<FrontendMessage, { type: 'Bind' }> => m.type === 'Bind' && m.parameters.length === 3);
  assert.deepEqual(bind?.parameters.map((p) => p?.toString() ?? null), ['41', 'café', null]);
  const backendTypes = new Set(seen.backend.map((m) => m.type));
  for (const type of ['AuthenticationOk', 'ParameterStatus', 'BackendKeyData', 'ReadyForQuery', 'ParseComplete', 'BindComplete', 'RowDescription', 'DataRow', 'CommandComplete', 'ErrorResponse']) {
    assert.ok(backendTypes.has(type as BackendMessage['type']), `server sent ${type}`);
  }
  const counts = seen.backend.flatMap((m) => (m.type === 'CommandComplete' ? [commandTagRows(m.tag)] : []));
  assert.ok(counts.includes(20000), `a CommandComplete of 20000 rows among ${counts.join(', ')}`);
  const error = seen.backend.find((m): m is Extract<BackendMessage, { type: 'ErrorResponse' }> => m.type === 'ErrorResponse');
  assert.equal(error?.fields.C, '42P01');
  assert.equal(error?.fields.V, 'ERROR');
  assert.match(error?.fields.M ?? '', /no_such_table_here/);
});

test('postgres wire live: psql asks for TLS, is told no, and runs simple queries and COPY both ways', async (t) => {
  if (!reachable) return t.skip('PostgreSQL unreachable');
  const startsBefore = seen.startups.length;
  const out = await psql([
    '-c', 'CREATE TEMP TABLE pgwire_copy (id int, note text)',
    '-c', 'COPY pgwire_copy FROM STDIN',
    '-c', 'SELECT count(*), sum(id) FROM pgwire_copy',
    '-c', 'COPY (SELECT id, note FROM pgwire_copy ORDER BY id LIMIT 2) TO STDOUT',
  ], Array.from({ length: 500 }, (_, i) => `${i + 1}\tnote ${i + 1}`).join('\n') + '\n\\.\n');
  assert.equal(out, '500|125250\n1\tnote 1\n2\tnote 2\n');
  assert.deepEqual(seen.errors, []);
  const startups = seen.startups.slice(startsBefore).map((s) => s.type);
  assert.deepEqual(startups, ['SSLRequest', 'StartupMessage']);
  const types = new Set(seen.frontend.map((m) => m.type));
  for (const type of ['Query', 'CopyData', 'CopyDone']) assert.ok(types.has(type as FrontendMessage['type']), `psql sent ${type}`);
  const backendTypes = new Set(seen.backend.map((m) => m.type));
  for (const type of ['CopyInResponse', 'CopyOutResponse', 'CopyData', 'CopyDone']) assert.ok(backendTypes.has(type as BackendMessage['type']), `server sent ${type}`);
});

test('postgres wire live: a CancelRequest built by the encoder, with the key the server sent, cancels a running query', async (t) => {
  if (!reachable) return t.skip('PostgreSQL unreachable');
  const client = new pg.Client({ connectionString: relayUrl() });
  const keysBefore = seen.backend.filter((m) => m.type === 'BackendKeyData').length;
  await withTimeout(client.connect(), 10_000, 'connecting through the relay');
  try {
    const keys = seen.backend.filter((m): m is Extract<BackendMessage, { type: 'BackendKeyData' }> => m.type === 'BackendKeyData');
    assert.equal(keys.length, keysBefore + 1);
    const key = keys.at(-1)!;
    const sleeping = client.query('SELECT pg_sleep(30)');
    await waitFor(async () => {
      const probe = new pg.Client({ connectionString: url.href });
      await probe.connect();
      try {
        const { rows } = await probe.query('SELECT 1 FROM pg_stat_activity WHERE pid = $1 AND query LIKE $2', [key.processId, 'SELECT pg_sleep%']);
        return rows.length === 1;
      } finally {
        await probe.end();
      }
    }, { timeoutMs: 10_000 });
    const canceller = net.connect({ host: '127.0.0.1', port: relayPort });
    await once(canceller, 'connect');
    canceller.end(encodeStartup({ type: 'CancelRequest', processId: key.processId, secretKey: key.secretKey }));
    await withTimeout(assert.rejects(sleeping, (err: { code?: string }) => err.code === '57014'), 10_000, 'the query being cancelled');
    canceller.destroy();
  } finally {
    await client.end();
  }
  assert.ok(seen.startups.some((s) => s.type === 'CancelRequest'));
  assert.deepEqual(seen.errors, []);
});
