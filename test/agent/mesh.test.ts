// The mesh's L4 path with two "agents" in this process (mesh-rig.ts): the caller "ui" on agent
// alpha (its process selector is this test's own node executable), the TCP echo "orders" behind
// agent beta. Real mutual TLS on loopback, the real /proc lookup of the calling process, the
// real policy engine; plus the agent YAML's mesh block.
import assert from 'node:assert/strict';
import { once } from 'node:events';
import net from 'node:net';
import tls from 'node:tls';
import { after, before, beforeEach, test } from 'node:test';
import { Mesh, declarationOf, meshServerName, MESH_ALPN, parseAgentConfig } from '../../src/agent/index.js';
import { serviceSpiffeId } from '../../src/ca/index.js';
import { isPosternError } from '../../src/errors.js';
import { waitFor, withTimeout } from '../helpers/util.js';
import { NODE_EXE, TRUST_DOMAIN, TestAuthority, TestFlowLog, TestIdentities, closed, echoClient, service, silent, startEchoService } from './mesh-rig.js';

const UI = serviceSpiffeId(TRUST_DOMAIN, 'shop', 'ui');
const ORDERS = serviceSpiffeId(TRUST_DOMAIN, 'shop', 'orders');
const allowUi = { name: 'orders-callers', namespace: 'shop', services: ['orders'], rules: [{ name: 'ui', effect: 'allow', who: { service: { app: 'ui' } }, what: { tls: {} } }] };
const allowReportsOnly = { name: 'orders-callers', namespace: 'shop', services: ['orders'], rules: [{ name: 'reports', effect: 'allow', who: { service: { app: 'reports' } }, what: { tls: {} } }] };

let authority: TestAuthority;
let echo: Awaited<ReturnType<typeof startEchoService>>;
let alpha: TestIdentities;
let beta: TestIdentities;
const alphaLog = new TestFlowLog();
const betaLog = new TestFlowLog();
const meshes: Mesh[] = [];

async function startMesh(options: Omit<ConstructorParameters<typeof Mesh>[0], 'authority' | 'logger'>): Promise<Mesh> {
  const mesh = new Mesh({ ...options, authority, logger: silent });
  await mesh.start();
  meshes.push(mesh);
  return mesh;
}

let callerPort = 0;
let inboundPort = 0;

before(async () => {
  authority = await TestAuthority.create();
  echo = await startEchoService();
  beta = new TestIdentities(authority, 'agt_beta', [service({ name: 'orders', namespace: 'shop', port: echo.port, labels: { app: 'orders' } })]);
  await beta.issue();
  const betaMesh = await startMesh({ config: { listen: { host: '127.0.0.1', port: 0 }, outbound: [] }, identities: beta, flowLog: betaLog, agentId: () => 'agt_beta' });
  inboundPort = betaMesh.inboundAddress()!.port;
  alpha = new TestIdentities(authority, 'agt_alpha', [service({ name: 'ui', namespace: 'shop', process: { exe: NODE_EXE }, labels: { app: 'ui' } })]);
  await alpha.issue();
  const outbound = [{ listen: { host: '127.0.0.1', port: 0 }, to: 'shop/orders', address: { host: '127.0.0.1', port: inboundPort }, protocol: 'tcp' as const }];
  const alphaMesh = await startMesh({ config: { outbound }, identities: alpha, flowLog: alphaLog, agentId: () => 'agt_alpha' });
  callerPort = alphaMesh.outboundAddress(0)!.port;
});

after(async () => {
  await Promise.all(meshes.map((m) => m.stop()));
  await echo.close();
});

beforeEach(() => {
  authority.revoked.clear();
  authority.setPolicies([allowUi]);
  alphaLog.events.length = 0;
  betaLog.events.length = 0;
});

/** The certificate serial beta serves for orders, seen by a direct handshake with ui's SVID. */
async function servedSerial(): Promise<string> {
  const svid = alpha.svid('shop/ui')!;
  const socket = tls.connect({ host: '127.0.0.1', port: inboundPort, servername: meshServerName({ namespace: 'shop', name: 'orders' }), ALPNProtocols: [MESH_ALPN], cert: svid.certPem, key: svid.keyPem, ca: [...authority.caPems()], checkServerIdentity: () => undefined });
  await once(socket, 'secureConnect');
  const serial = socket.getPeerX509Certificate()!.serialNumber;
  socket.destroy();
  return serial;
}

test('mesh tcp: an allowed call reaches the service; flow.open and flow.close carry both identities and the bytes', async () => {
  const client = await echoClient(callerPort);
  assert.equal(await client.roundTrip('hello orders\n'), 'hello orders\n');
  assert.equal(await client.roundTrip('again\n'), 'again\n');
  client.socket.end();
  await withTimeout(closed(client.socket), 5_000, 'the flow to close');
  const close = await waitFor(() => betaLog.of('flow.close')[0], { timeoutMs: 5_000, what: 'flow.close' });
  const [open] = betaLog.of('flow.open');
  assert.ok(open);
  for (const event of [open, close]) {
    assert.equal(event.actor, UI);
    assert.equal(event.socket, ORDERS);
    assert.equal(event.rule, 'shop/orders-callers#ui');
    assert.equal(event.connectionId, open.connectionId);
    assert.deepEqual(event.details?.caller, { spiffeId: UI, agentId: 'agt_alpha', labels: { app: 'ui' } });
    assert.deepEqual(event.details?.callee, { spiffeId: ORDERS, agentId: 'agt_beta', labels: { app: 'orders' } });
  }
  assert.equal(close.details?.bytesIn, 19);
  assert.equal(close.details?.bytesOut, 19);
  assert.equal(close.reason, 'closed');
  assert.equal(typeof close.details?.durationMs, 'number');
  assert.deepEqual(alphaLog.events, [], 'the sender records only its refusals');
});

test('mesh tcp: a half-close travels through: the caller ends its side and still gets the whole answer', async () => {
  const socket = net.connect({ port: callerPort, host: '127.0.0.1', allowHalfOpen: true });
  let answer = '';
  socket.on('data', (chunk: Buffer) => void (answer += chunk.toString('utf8')));
  socket.end('one request, then FIN\n');
  await withTimeout(once(socket, 'end'), 5_000, 'the answer to end');
  assert.equal(answer, 'one request, then FIN\n');
  socket.end();
  await closed(socket);
});

test('mesh tcp: a denied call is refused with the reason, and the service sees no byte', async () => {
  authority.setPolicies([allowReportsOnly]);
  const before = { connections: echo.connections, bytes: echo.bytes };
  const client = await echoClient(callerPort);
  client.socket.write('must not arrive');
  await withTimeout(closed(client.socket), 5_000, 'the refused connection to close');
  const denied = await waitFor(() => betaLog.of('access.denied')[0], { timeoutMs: 5_000, what: 'access.denied' });
  assert.equal(denied.actor, UI);
  assert.equal(denied.socket, ORDERS);
  assert.equal(denied.decision, 'deny');
  assert.match(denied.reason ?? '', /no rule allows/);
  assert.deepEqual({ connections: echo.connections, bytes: echo.bytes }, before);
  assert.deepEqual(betaLog.of('flow.open'), []);
});

test('mesh tcp: a process that is not the declared executable is refused by its own agent', async () => {
  const gammaLog = new TestFlowLog();
  const gamma = new TestIdentities(authority, 'agt_gamma', [service({ name: 'ui', namespace: 'shop', process: { exe: '/usr/local/bin/ui-server' }, labels: { app: 'ui' } })]);
  await gamma.issue();
  const outbound = [{ listen: { host: '127.0.0.1', port: 0 }, to: 'shop/orders', address: { host: '127.0.0.1', port: inboundPort }, protocol: 'tcp' as const }];
  const mesh = await startMesh({ config: { outbound }, identities: gamma, flowLog: gammaLog, agentId: () => 'agt_gamma' });
  const before = echo.connections;
  const client = await echoClient(mesh.outboundAddress(0)!.port);
  client.socket.write('from an impostor');
  await withTimeout(closed(client.socket), 5_000, 'the impostor to be cut');
  const denied = await waitFor(() => gammaLog.of('access.denied')[0], { timeoutMs: 5_000, what: 'access.denied' });
  assert.equal(denied.reason, `process ${NODE_EXE} (uid ${process.getuid!()}) is not a declared service`);
  assert.equal(denied.socket, ORDERS);
  assert.equal(echo.connections, before);
  assert.deepEqual(betaLog.events, [], 'nothing reached the destination agent');
});

test('mesh tcp: SVID rotation drops no open connection; new handshakes get the new certificates', async () => {
  const client = await echoClient(callerPort);
  assert.equal(await client.roundTrip('before rotation\n'), 'before rotation\n');
  const servedBefore = await servedSerial();
  await beta.issue();
  await alpha.issue();
  assert.notEqual(await servedSerial(), servedBefore, 'beta serves the renewed SVID');
  assert.equal(await client.roundTrip('after rotation\n'), 'after rotation\n', 'the open flow goes on');
  const second = await echoClient(callerPort);
  assert.equal(await second.roundTrip('new flow\n'), 'new flow\n');
  assert.equal(client.socket.destroyed, false);
  client.socket.end();
  second.socket.end();
  await Promise.all([closed(client.socket), closed(second.socket)]);
  await waitFor(() => betaLog.of('flow.close').length === 2, { timeoutMs: 5_000, what: 'both flows closed' });
  assert.deepEqual(betaLog.of('flow.close').map((e) => e.reason), ['closed', 'closed']);
});

test('mesh tcp: a revoked caller agent is cut within 1 s of the change, and refused afterwards', async () => {
  const client = await echoClient(callerPort);
  assert.equal(await client.roundTrip('ping\n'), 'ping\n');
  authority.revoke('agt_alpha');
  await withTimeout(closed(client.socket), 1_000, 'the revoked agent\'s flow to be cut');
  const close = await waitFor(() => betaLog.of('flow.close')[0], { timeoutMs: 1_000, what: 'flow.close' });
  assert.equal(close.reason, `agent agt_alpha of ${UI} is revoked`);
  const again = await echoClient(callerPort);
  await withTimeout(closed(again.socket), 5_000, 'the next connection to be refused');
  const denied = await waitFor(() => betaLog.of('access.denied')[0], { timeoutMs: 5_000, what: 'access.denied' });
  assert.match(denied.reason ?? '', /agent-revoked/);
});

test('mesh tcp: a policy change cuts an open flow that no rule allows any more', async () => {
  const client = await echoClient(callerPort);
  assert.equal(await client.roundTrip('ping\n'), 'ping\n');
  authority.setPolicies([allowReportsOnly]);
  await withTimeout(closed(client.socket), 1_000, 'the flow to be cut');
  const close = await waitFor(() => betaLog.of('flow.close')[0], { timeoutMs: 1_000, what: 'flow.close' });
  assert.match(close.reason ?? '', /^decided again: denied: no rule allows/);
  assert.equal(close.details?.bytesIn, 5);
});

test('mesh tcp: in observe mode a flow no rule allows goes through and is recorded as access.would_deny', async () => {
  authority.setPolicies([{ ...allowReportsOnly, mode: 'observe' }]);
  const client = await echoClient(callerPort);
  assert.equal(await client.roundTrip('observed\n'), 'observed\n');
  const wouldDeny = await waitFor(() => betaLog.of('access.would_deny')[0], { timeoutMs: 5_000, what: 'access.would_deny' });
  assert.equal(wouldDeny.actor, UI);
  assert.match(wouldDeny.reason ?? '', /would be denied: no rule allows/);
  assert.equal(betaLog.of('flow.open').length, 1);
  client.socket.end();
  await closed(client.socket);
});

test('agent YAML: the mesh block and the services\' protocol', async () => {
  const base = 'server: https://localhost:8443\nca_pin: sha256:0123456789abcdef0123456789\nattestation: { method: join_token, token: pat1.x.y }\nworkload_api: { socket: /run/w.sock }\n';
  const services = 'services:\n  - { name: ui, namespace: shop, process: { exe: /usr/bin/ui } }\n  - { name: api, namespace: shop, port: 8080, protocol: http }\n';
  const config = parseAgentConfig(`${base}${services}mesh:\n  listen: 0.0.0.0:7443\n  outbound:\n    - { listen: 127.0.0.1:7001, to: shop/orders, address: "[fd00::2]:7443" }\n`, 'a.yaml');
  assert.deepEqual(config.mesh, { listen: { host: '0.0.0.0', port: 7443 }, outbound: [{ listen: { host: '127.0.0.1', port: 7001 }, to: 'shop/orders', address: { host: 'fd00::2', port: 7443 }, protocol: 'tcp' }] });
  assert.deepEqual(config.services.map((s) => s.protocol), ['tcp', 'http']);
  assert.equal('protocol' in (await declarationOf(config.services[1]!)), false, 'the control plane gets the declaration, not the mesh\'s protocol');
  const problem = (yaml: string, message: RegExp) => assert.throws(() => parseAgentConfig(base + yaml, 'a.yaml'), (err) => isPosternError(err, 'config_invalid') && message.test(err.message));
  problem(`${services}mesh: { outbound: [{ listen: 0.0.0.0:7001, to: shop/orders, address: 10.0.0.2:7443 }] }\n`, /mesh\.outbound\[0\]\.listen: must be a loopback address/);
  problem(`${services}mesh: { outbound: [{ listen: 127.0.0.1:7001, to: orders, address: 10.0.0.2:7443 }] }\n`, /mesh\.outbound\[0\]\.to: must be namespace\/name/);
  problem(`${services}mesh: { outbound: [{ listen: 127.0.0.1:7001, to: shop/orders, address: 10.0.0.2 }] }\n`, /mesh\.outbound\[0\]\.address: "10\.0\.0\.2" is not host:port/);
  problem(`${services}mesh: { outbound: [{ listen: 127.0.0.1:1, to: a/b, address: h:1 }, { listen: 127.0.0.1:1, to: a/c, address: h:1 }] }\n`, /mesh\.outbound\[1\]\.listen: 127\.0\.0\.1:1 is used twice/);
  problem('services: [{ name: api, port: 80 }]\nmesh: { outbound: [{ listen: 127.0.0.1:7001, to: shop/orders, address: h:1 }] }\n', /mesh\.outbound: needs a declared service with a process selector/);
  problem('services: [{ name: ui, process: { exe: /bin/ui } }]\nmesh: { listen: 0.0.0.0:7443 }\n', /mesh\.listen: no declared service has a port/);
  problem('services: [{ name: api, protocol: http }]\n', /services\[0\]\.protocol: .*give port too/);
  problem(`${services}mesh: { listen: 0.0.0.0:7443, extra: 1 }\n`, /mesh: Unrecognized key/i);
});
