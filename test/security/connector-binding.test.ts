// Attack: a second enrolled connector (a developer's laptop with a join token for another
// socket, or with one that names none) announces an existing socket and takes a share of its
// requests and TLS connections. The edge must refuse every announcement of a socket the
// connector is not bound to, audit it, tell the connector, and follow binding changes live.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import tls from 'node:tls';
import { createKeyAndCsr } from '../../src/ca/csr.js';
import { auditEvents, cleanupAll, startConnector, startServer, waitForAudit, writeConnectorConfig } from '../helpers/processes.js';
import type { ConnectorHandle, ConnectorYaml, ServerHandle } from '../helpers/processes.js';
import { api, httpsFetch } from '../helpers/https.js';
import { startUpstream } from '../helpers/upstream.js';
import type { Upstream } from '../helpers/upstream.js';
import { tempDir, waitFor, withTimeout } from '../helpers/util.js';

const REQUESTS = 40;

interface TunnelView { connectorId: string; sockets: string[] }
interface SocketView { connectors: { id: string; name: string; binding: string }[] }

/** A line echo that says who answered: "<label>:<line>". */
async function labelledEcho(label: string): Promise<{ server: net.Server; upstream: string; connections: () => number }> {
  let connections = 0;
  const server = net.createServer((socket) => {
    connections++;
    socket.setEncoding('utf8').on('data', (line: string) => socket.write(`${label}:${line}`));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return { server, upstream: `tcp://127.0.0.1:${(server.address() as net.AddressInfo).port}`, connections: () => connections };
}

describe('connector ↔ socket binding', () => {
  let server: ServerHandle;
  let workDir: string;
  let home: Upstream;
  let laptop: Upstream;
  let prod: Upstream;
  let homeEcho: Awaited<ReturnType<typeof labelledEcho>>;
  let laptopEcho: Awaited<ReturnType<typeof labelledEcho>>;
  let rightful: ConnectorHandle;
  let intruder: ConnectorHandle;
  let bare: ConnectorHandle;
  let identity: { key: string; cert: string };

  const joinToken = async (name: string, binding: string[]): Promise<string> => {
    const result = await server.cli(['connector', 'token', 'create', '--name', name, ...binding]);
    assert.equal(result.code, 0, result.stderr);
    return result.stdout.trim();
  };
  const enrolled = async (name: string, binding: string[], sockets: ConnectorYaml['sockets']): Promise<ConnectorHandle> => {
    const config = await writeConnectorConfig(workDir, `${name}.yaml`, { server: server.url, token: await joinToken(name, binding), connections: 2, sockets });
    return startConnector(['connector', 'start', '--config', config], server.env);
  };
  const tunnelsOf = async (connectorId: string): Promise<TunnelView[]> =>
    (await api(server, '/api/v1/tunnels')).json<{ tunnels: TunnelView[] }>().tunnels.filter((t) => t.connectorId === connectorId);
  /** Both tunnels of the connector serve exactly `sockets` (sorted). */
  const serving = (connector: ConnectorHandle, sockets: string[], what: string) => waitFor(async () => {
    const tunnels = await tunnelsOf(connector.id);
    return tunnels.length === 2 && tunnels.every((t) => [...t.sockets].sort().join() === sockets.join());
  }, { timeoutMs: 15_000, what });
  const get = (socket: string) => httpsFetch({ port: server.port, ca: server.caPem, host: `${socket}.localhost`, path: `/${socket}` });
  /** Sends `REQUESTS` requests; resolves with how many each upstream saw. */
  const spread = async (socket: string, upstreams: Record<string, Upstream>): Promise<Record<string, number>> => {
    const before = Object.fromEntries(Object.entries(upstreams).map(([k, u]) => [k, u.seen.length]));
    for (let i = 0; i < REQUESTS; i++) assert.equal((await get(socket)).status, 200);
    return Object.fromEntries(Object.entries(upstreams).map(([k, u]) => [k, u.seen.length - before[k]!]));
  };
  /** Opens a TLS connection to the vault socket and says one line; resolves with the echo and the open socket. */
  const vault = () => withTimeout(new Promise<{ answer: string; socket: tls.TLSSocket }>((resolve, reject) => {
    const socket = tls.connect({ host: '127.0.0.1', port: server.port, servername: 'vault.localhost', ca: server.caPem, ...identity });
    socket.setEncoding('utf8');
    socket.once('secureConnect', () => socket.write('ping\n'));
    socket.once('data', (answer: string) => resolve({ answer: answer.trim(), socket }));
    socket.once('error', reject);
    socket.once('close', () => reject(new Error('closed before answering')));
  }), 10_000, 'a tls round trip to vault');
  const refusals = async (connector: ConnectorHandle, socket: string) =>
    (await auditEvents(server, ['--type', 'connector.socket_refused', '--socket', socket])).filter((e) => e.details.connectorId === connector.id);

  before(async () => {
    workDir = (await tempDir()).path;
    [home, laptop, prod, homeEcho, laptopEcho] = await Promise.all([startUpstream(), startUpstream(), startUpstream(), labelledEcho('home'), labelledEcho('laptop')]);
    server = await startServer();
    const sockets = [
      { name: 'secret', type: 'http', upstream: home.url },
      { name: 'dev', type: 'http', upstream: laptop.url },
      { name: 'vault', type: 'tls', upstream: homeEcho.upstream, allowed_email_domains: ['corp.example'] },
      { name: 'prod-a', type: 'http', tags: { env: 'prod' } },
      { name: 'stage', type: 'http', tags: { env: 'stage' } },
    ];
    for (const body of sockets) assert.equal((await api(server, '/api/v1/sockets', { method: 'POST', body })).status, 201);
    assert.equal((await api(server, '/api/v1/users', { method: 'POST', body: { email: 'ana@corp.example', password: 'correct horse battery staple' } })).status, 201);
    const { keyPem, csrPem } = await createKeyAndCsr('ana@corp.example');
    const issued = await api(server, '/api/v1/certificates/tls', { method: 'POST', body: { csr: csrPem, email: 'ana@corp.example', ttl_seconds: 600 } });
    assert.equal(issued.status, 201, issued.text);
    identity = { key: keyPem, cert: issued.json<{ certificate: string }>().certificate };

    rightful = await enrolled('home', ['--socket', 'secret', '--socket', 'vault'], [
      { name: 'secret', type: 'http', upstream: home.url },
      { name: 'vault', type: 'tls', upstream: homeEcho.upstream },
    ]);
    // The laptop's token is for `dev` only; it announces the others' sockets too, with its own upstreams.
    intruder = await enrolled('laptop', ['--socket', 'dev'], [
      { name: 'secret', type: 'http', upstream: laptop.url },
      { name: 'vault', type: 'tls', upstream: laptopEcho.upstream },
      { name: 'dev', type: 'http', upstream: laptop.url },
    ]);
    // A token that names no socket enrolls a connector that may serve nothing.
    bare = await enrolled('bare', [], [{ name: 'secret', type: 'http', upstream: laptop.url }]);
    await Promise.all([
      serving(rightful, ['secret', 'vault'], 'the rightful connector to serve secret and vault'),
      serving(intruder, ['dev'], 'the laptop to serve dev only'),
      waitFor(async () => new Set((await refusals(bare, 'secret')).map((e) => e.details.tunnel)).size === 2, { what: 'both tunnels of the bare connector refused' }),
    ]);
  });

  after(async () => {
    await cleanupAll();
    await Promise.all([home, laptop, prod].map((u) => u?.close()));
    for (const echo of [homeEcho, laptopEcho]) echo?.server.close();
  });

  test('an http socket announced by a connector bound elsewhere: refused, audited, no request reaches it', async () => {
    assert.match(intruder.process.stdout, /is connected; serving dev\n/);
    await intruder.process.waitForOutput(/edge refused to route this socket to us/, { stream: 'stderr' });
    assert.match(intruder.logs(), /"socket":"secret".*not bound to connector/);
    assert.deepEqual(await spread('secret', { home, laptop }), { home: REQUESTS, laptop: 0 });

    const [refused] = await refusals(intruder, 'secret');
    assert.ok(refused, 'a connector.socket_refused event for the laptop');
    assert.equal(refused.decision, 'deny');
    assert.equal(refused.actor, `connector:${intruder.id}`);
    assert.equal(refused.details.code, 'not-bound');
    assert.equal(refused.details.connectorName, 'laptop');
    assert.match(refused.reason, /socket "secret" is not bound to connector/);

    const shown = await server.cli(['socket', 'show', 'secret', '--json']);
    assert.deepEqual(JSON.parse(shown.stdout).connectors, [{ id: rightful.id, name: 'home', binding: 'direct' }]);
    const text = await server.cli(['socket', 'show', 'secret']);
    assert.match(text.stdout, new RegExp(`connectors: +${rightful.id} \\(home\\)`));
  });

  test('a connector enrolled with a token that names no socket serves nothing', async () => {
    assert.match(bare.process.stdout, /is connected; serving no sockets/);
    assert.equal((await refusals(bare, 'secret'))[0]?.details.code, 'not-bound');
    assert.deepEqual(await spread('secret', { home, laptop }), { home: REQUESTS, laptop: 0 });
  });

  test('a tls socket announced by a connector bound elsewhere: every connection reaches the rightful upstream', async () => {
    const before = laptopEcho.connections();
    for (let i = 0; i < 10; i++) {
      const { answer, socket } = await vault();
      assert.equal(answer, 'home:ping');
      socket.destroy();
    }
    assert.equal(laptopEcho.connections(), before, 'no connection reached the laptop');
    assert.equal((await refusals(intruder, 'vault'))[0]?.details.code, 'not-bound');
  });

  test('a tag-selector token binds the sockets with those tags, also ones created later, and follows tag changes', async () => {
    const tagged = await enrolled('prod', ['--tag', 'env=prod'], ['prod-a', 'prod-b', 'stage'].map((name) => ({ name, type: 'http' as const, upstream: prod.url })));
    await serving(tagged, ['prod-a'], 'the prod connector to serve prod-a');
    assert.equal((await refusals(tagged, 'stage'))[0]?.details.code, 'not-bound');
    assert.equal((await refusals(tagged, 'prod-b'))[0]?.details.code, 'unknown-socket');

    const created = await server.cli(['socket', 'create', '--name', 'prod-b', '--tag', 'env=prod', '--json']);
    assert.equal(created.code, 0, created.stderr);
    assert.deepEqual((JSON.parse(created.stdout) as SocketView).connectors, [{ id: tagged.id, name: 'prod', binding: 'tags' }]);
    await serving(tagged, ['prod-a', 'prod-b'], 'the socket created later to be served');
    assert.deepEqual(await spread('prod-b', { prod }), { prod: REQUESTS });
    assert.equal((await get('stage')).status, 503, 'stage has no connector');

    assert.equal((await server.cli(['socket', 'update', 'prod-a', '--tag', 'env=dev'])).code, 0);
    await serving(tagged, ['prod-b'], 'prod-a to leave the prod connector when its tags change');
    assert.equal((await get('prod-a')).status, 503);
  });

  test('`socket update --connector` moves a binding on live tunnels; open streams of the old connector are cut', async () => {
    const moved = await server.cli(['socket', 'update', 'secret', '--connector', intruder.id, '--json']);
    assert.equal(moved.code, 0, moved.stderr);
    assert.deepEqual((JSON.parse(moved.stdout) as SocketView).connectors.map((c) => c.id), [intruder.id]);
    await Promise.all([serving(intruder, ['dev', 'secret'], 'the laptop to serve secret'), serving(rightful, ['vault'], 'home to stop serving secret')]);
    await intruder.process.waitForOutput(/the edge changed which sockets it routes to us/, { stream: 'stderr' });
    assert.deepEqual(await spread('secret', { home, laptop }), { home: 0, laptop: REQUESTS });
    assert.equal((await refusals(rightful, 'secret'))[0]?.details.code, 'not-bound', 'the connector that lost the binding is told and audited');

    const open = await vault();
    assert.equal(open.answer, 'home:ping');
    const closed = new Promise((resolve) => open.socket.once('close', resolve));
    // Names work as well as ids; add and remove edit the list.
    const edited = await server.cli(['socket', 'update', 'vault', '--add-connector', 'laptop', '--remove-connector', rightful.id]);
    assert.equal(edited.code, 0, edited.stderr);
    await withTimeout(closed, 10_000, 'the open connection through the unbound connector to be cut');
    await serving(rightful, [], 'home to serve nothing');
    assert.equal((await vault()).answer, 'laptop:ping');
  });

  test('binding input is checked: unknown connectors and sockets, empty selectors', async () => {
    const unknown = await server.cli(['socket', 'update', 'dev', '--connector', 'nobody']);
    assert.equal(unknown.code, 1);
    assert.match(unknown.stderr.trim(), /^[^\n]*connector "nobody" does not exist[^\n]*$/);
    const both = await api(server, '/api/v1/sockets/dev', { method: 'PATCH', body: { connectors: [], add_connectors: ['laptop'] } });
    assert.equal(both.status, 400);
    const missing = await server.cli(['connector', 'token', 'create', '--socket', 'no-such-socket']);
    assert.equal(missing.code, 1);
    assert.match(missing.stderr, /socket "no-such-socket" does not exist/);
    const empty = await api(server, '/api/v1/connectors/tokens', { method: 'POST', body: { tags: {} } });
    assert.equal(empty.status, 400, empty.text);
    const listed = await waitForAudit(server, ['--type', 'connector.socket_refused'], (e) => e.socket === 'secret', 'refusals in `audit search`');
    assert.equal(listed.type, 'connector.socket_refused');
  });
});
