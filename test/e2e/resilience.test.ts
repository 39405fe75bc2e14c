// E2E: tunnels survive trouble — server SIGKILL and restart, one tunnel connection cut, WebSocket fallback through a CONNECT proxy, revocation.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { cleanupAll, startConnector, startServer, writeConnectorConfig } from '../helpers/processes.js';
import type { ConnectorHandle, ServerHandle } from '../helpers/processes.js';
import { api, httpsFetch } from '../helpers/https.js';
import type { HttpsResponse } from '../helpers/https.js';
import { startConnectProxy, startTcpRelay } from '../helpers/relays.js';
import type { ConnectProxy, TcpRelay } from '../helpers/relays.js';
import { startUpstream } from '../helpers/upstream.js';
import type { Upstream } from '../helpers/upstream.js';
import { tempDir, waitFor } from '../helpers/util.js';

interface TunnelView {
  connectorId: string;
  transport: 'tls' | 'websocket';
  sockets: string[];
}

describe('tunnel resilience', () => {
  let server: ServerHandle;
  let upstream: Upstream;
  let workDir: string;
  let relay: TcpRelay | undefined;
  let proxy: ConnectProxy | undefined;

  const get = (socket: string, path = '/'): Promise<HttpsResponse> =>
    httpsFetch({ port: server.port, ca: server.caPem, host: `${socket}.localhost`, path, timeoutMs: 10_000 });
  const status = async (socket: string): Promise<number> => (await get(socket)).status;
  const tunnelsOf = async (connectorId: string): Promise<TunnelView[]> =>
    (await api(server, '/api/v1/tunnels')).json<{ tunnels: TunnelView[] }>().tunnels.filter((t) => t.connectorId === connectorId);
  /** Tunnels the edge has welcomed (said hello, sockets routed). */
  const readyTunnels = async (connectorId: string): Promise<number> => (await tunnelsOf(connectorId)).filter((t) => t.sockets.length > 0).length;
  const twoTunnels = (connectorId: string, timeoutMs = 20_000) =>
    waitFor(async () => ((await readyTunnels(connectorId)) === 2 ? true : undefined), { timeoutMs, what: `two ready tunnels of ${connectorId}` });

  async function enrollConnector(file: string, serverUrl: string, socket: string, extraArgs: string[] = []): Promise<ConnectorHandle> {
    const token = await server.cli(['connector', 'token', 'create', '--name', file.replace(/\W/g, '-'), '--socket', socket]);
    assert.equal(token.code, 0, token.stderr);
    const config = await writeConnectorConfig(workDir, file, {
      server: serverUrl, token: token.stdout.trim(), connections: 2, sockets: [{ name: socket, type: 'http', upstream: upstream.url }],
    });
    return startConnector(['connector', 'start', '--config', config, ...extraArgs], server.env);
  }

  before(async () => {
    workDir = (await tempDir()).path;
    upstream = await startUpstream();
    server = await startServer();
    const created = await Promise.all(['restart', 'relayed', 'killed', 'proxied', 'revoked'].map((name) =>
      api(server, '/api/v1/sockets', { method: 'POST', body: { name, type: 'http', upstream: upstream.url } })));
    for (const res of created) assert.equal(res.status, 201, res.text);
  });

  after(async () => {
    await cleanupAll();
    await relay?.close();
    await proxy?.close();
    await upstream?.close();
  });

  test('server SIGKILLed and restarted on the same port: the connector reconnects by itself', async () => {
    const connector = await enrollConnector('restart.yaml', server.url, 'restart');
    assert.equal(await status('restart'), 200);
    await twoTunnels(connector.id);

    const killed = await server.stop('SIGKILL');
    assert.equal(killed.signal, 'SIGKILL');
    await assert.rejects(get('restart'), 'nothing listens while the server is down');
    const previous = server;
    server = await startServer({ port: previous.port, dataDir: previous.dataDir });
    assert.equal(server.adminToken, previous.adminToken, 'the admin token survives a crash');
    assert.equal(server.caPem, previous.caPem, 'so does the CA');

    await waitFor(async () => (await status('restart')) === 200, { timeoutMs: 30_000, what: 'the socket to answer after the restart' });
    await twoTunnels(connector.id, 30_000);
    assert.ok(connector.process.running, 'the same connector process, never restarted');
    assert.match(connector.logs(), /tunnel reconnect scheduled/);
    assert.equal((connector.process.stdout.match(/is connected/g) ?? []).length, 1, 'announced once');
  });

  test('one of two tunnel connections cut: requests keep flowing while it reconnects', async () => {
    const activeRelay = relay = await startTcpRelay(server.port);
    const connector = await enrollConnector('relayed.yaml', `https://localhost:${activeRelay.port}`, 'relayed');
    await twoTunnels(connector.id);
    assert.equal(activeRelay.openTunnels().length, 2, 'both tunnels go through the relay');
    const tunnelsBefore = activeRelay.connections.filter((c) => c.tunnel).length;

    activeRelay.cut(activeRelay.openTunnels()[0]!);
    // From the very next request on, nothing may fail, until the connector has redialed.
    const failures: string[] = [];
    let requests = 0;
    let sawOneTunnel = false;
    for (let i = 0; i < 2_000; i++) {
      const res = await get('relayed', `/during-reconnect/${i}`);
      requests++;
      if (res.status !== 200) failures.push(`${res.status} ${res.text.trim()}`);
      const ready = await readyTunnels(connector.id);
      if (ready < 2) sawOneTunnel = true;
      if (requests >= 20 && ready === 2 && activeRelay.openTunnels().length === 2) break;
    }
    assert.deepEqual(failures, [], `${failures.length} of ${requests} requests failed during the reconnect`);
    assert.ok(sawOneTunnel, 'the edge noticed the cut (served on one tunnel for a while)');
    assert.equal(activeRelay.openTunnels().length, 2, 'the connector redialed the cut connection');
    assert.equal(activeRelay.connections.filter((c) => c.tunnel).length, tunnelsBefore + 1, 'exactly one new tunnel connection');
    assert.equal(await readyTunnels(connector.id), 2, 'the edge lists no dead tunnel');
    assert.ok(connector.process.running);
  });

  test('a connector killed with SIGKILL: its socket answers 503 at once instead of hanging', async () => {
    const connector = await enrollConnector('killed.yaml', server.url, 'killed');
    await twoTunnels(connector.id);
    assert.equal(await status('killed'), 200);
    await connector.stop('SIGKILL');
    // Each request is bounded: one routed to a dead tunnel would hang, not fail.
    const res = await waitFor(async () => {
      const answer = await httpsFetch({ port: server.port, ca: server.caPem, host: 'killed.localhost', path: '/', timeoutMs: 3_000 });
      return answer.status === 503 ? answer : undefined;
    }, { timeoutMs: 5_000, what: 'the killed connector\'s socket to answer 503' });
    assert.equal(res.headers['postern-error'], 'connector_offline');
    assert.deepEqual(await tunnelsOf(connector.id), []);
  });

  test('a connector of the earlier protocol asking for its WebSocket tunnel gets 426 and the reason', async () => {
    const res = await httpsFetch({
      port: server.port, ca: server.caPem, host: 'localhost', path: '/_postern/tunnel', timeoutMs: 10_000,
      headers: { connection: 'Upgrade', upgrade: 'websocket', 'sec-websocket-version': '13', 'sec-websocket-key': 'dGhlIHNhbXBsZSBub25jZQ==' },
    });
    assert.equal(res.status, 426);
    assert.equal(res.headers['postern-error'], 'tunnel_version_unsupported');
    assert.match(res.text, /speaks tunnel protocol postern\/2; upgrade this connector/);
  });

  test('WebSocket fallback through an HTTP CONNECT proxy carries the tunnel', async () => {
    const activeProxy = proxy = await startConnectProxy();
    const connector = await enrollConnector('proxied.yaml', server.url, 'proxied', ['--proxy', activeProxy.url]);
    await twoTunnels(connector.id);
    // The CA pin check, the enrollment and both tunnels: nothing went around the proxy.
    assert.ok(activeProxy.connects.length >= 4, `the proxy saw the CONNECTs (${activeProxy.connects.join(', ')})`);
    assert.ok(activeProxy.connects.every((target) => target === `localhost:${server.port}`), activeProxy.connects.join(', '));
    assert.equal(activeProxy.otherRequests, 0);
    const tunnels = await tunnelsOf(connector.id);
    assert.deepEqual(tunnels.map((t) => t.transport), ['websocket', 'websocket']);
    for (let i = 0; i < 10; i++) {
      const res = await get('proxied', `/through-proxy/${i}`);
      assert.equal(res.status, 200, res.text);
      assert.equal(res.json<{ url: string }>().url, `/through-proxy/${i}`);
    }
  });

  test('revoking a connector cuts its tunnels at once and its socket answers 503', async () => {
    const connector = await enrollConnector('revoked.yaml', server.url, 'revoked');
    await twoTunnels(connector.id);
    assert.equal(await status('revoked'), 200);
    const result = await server.cli(['connector', 'revoke', connector.id]);
    assert.equal(result.code, 0, result.stderr);
    assert.equal(result.stdout.trim(), `revoked connector ${connector.id}`);
    const res = await get('revoked');
    assert.equal(res.status, 503, 'offline as soon as the revoke command returns');
    assert.equal(res.headers['postern-error'], 'connector_offline');
    assert.deepEqual(await tunnelsOf(connector.id), []);
    // The connector keeps redialing; the edge refuses it every time and the socket stays offline.
    await server.process.waitForOutput(new RegExp(`"connectorId":"${connector.id}".*"msg":"tunnel refused: unknown or revoked connector"`), { stream: 'stderr', timeoutMs: 15_000 });
    assert.equal(await status('revoked'), 503);
    assert.deepEqual(await tunnelsOf(connector.id), []);
    const listed = (await api(server, '/api/v1/connectors')).json<{ connectors: { id: string; revokedAt: string | null }[] }>().connectors;
    assert.ok(listed.find((c) => c.id === connector.id)?.revokedAt, 'revokedAt is set');
  });
});
