// The mesh's L7 path with two "agents" in this process (mesh-rig.ts): "ui" on agent alpha calls
// the HTTP service "api" behind agent beta through alpha's local proxy, which adds ui's JWT-SVID;
// beta decides per method and path, with the person the call is made for when the caller relays
// a Postern assertion. Forged requests go straight to beta's mesh listener with ui's real
// certificate, as a compromised caller agent could send them.
import assert from 'node:assert/strict';
import https from 'node:https';
import type tls from 'node:tls';
import { after, before, beforeEach, test } from 'node:test';
import { Mesh, MESH_ALPN, meshServerName } from '../../src/agent/index.js';
import { receiverHeaders, senderHeaders } from '../../src/agent/mesh-http.js';
import { createSvidKeyAndCsr, serviceSpiffeId } from '../../src/ca/index.js';
import { startUpstream } from '../helpers/upstream.js';
import type { Upstream } from '../helpers/upstream.js';
import { waitFor } from '../helpers/util.js';
import { NODE_EXE, TRUST_DOMAIN, TestAuthority, TestFlowLog, TestIdentities, service, silent } from './mesh-rig.js';

const UI = serviceSpiffeId(TRUST_DOMAIN, 'shop', 'ui');
const API = serviceSpiffeId(TRUST_DOMAIN, 'shop', 'api');
const policy = {
  name: 'api-callers', namespace: 'shop', services: ['api'],
  rules: [
    { name: 'read-items', effect: 'allow', who: { service: { app: 'ui' } }, what: { http: { methods: ['GET'], paths: ['/items/*'] } } },
    { name: 'alice-notes', effect: 'allow', who: { service: { app: 'ui' }, on_behalf_of: { email: ['alice@corp.example'] } }, what: { http: { methods: ['GET'], paths: ['/alice/*'] } } },
  ],
};

let authority: TestAuthority;
let upstream: Upstream;
let alpha: TestIdentities;
let batch: TestIdentities;
const betaLog = new TestFlowLog();
const meshes: Mesh[] = [];
let proxyPort = 0;
let inboundPort = 0;

before(async () => {
  authority = await TestAuthority.create();
  upstream = await startUpstream();
  const beta = new TestIdentities(authority, 'agt_beta', [service({ name: 'api', namespace: 'shop', port: upstream.port, protocol: 'http', labels: { app: 'api' } })]);
  await beta.issue();
  const betaMesh = new Mesh({ config: { listen: { host: '127.0.0.1', port: 0 }, outbound: [] }, identities: beta, authority, flowLog: betaLog, agentId: () => 'agt_beta', logger: silent });
  await betaMesh.start();
  meshes.push(betaMesh);
  inboundPort = betaMesh.inboundAddress()!.port;
  alpha = new TestIdentities(authority, 'agt_alpha', [service({ name: 'ui', namespace: 'shop', process: { exe: NODE_EXE }, labels: { app: 'ui' } })]);
  await alpha.issue();
  const outbound = [{ listen: { host: '127.0.0.1', port: 0 }, to: 'shop/api', address: { host: '127.0.0.1', port: inboundPort }, protocol: 'http' as const }];
  const alphaMesh = new Mesh({ config: { outbound }, identities: alpha, authority, flowLog: new TestFlowLog(), agentId: () => 'agt_alpha', logger: silent });
  await alphaMesh.start();
  meshes.push(alphaMesh);
  proxyPort = alphaMesh.outboundAddress(0)!.port;
  batch = new TestIdentities(authority, 'agt_alpha', [service({ name: 'batch', namespace: 'shop', labels: { app: 'batch' } })]);
  await batch.issue();
});

after(async () => {
  await Promise.all(meshes.map((m) => m.stop()));
  await upstream.close();
});

beforeEach(() => {
  authority.setPolicies([policy]);
  betaLog.events.length = 0;
});

interface Answer {
  status: number;
  body: string;
  json: () => Record<string, unknown>;
}

function collect(req: ReturnType<typeof https.request>): Promise<Answer> {
  return new Promise((resolve, reject) => {
    req.setTimeout(10_000, () => req.destroy(new Error('no answer within 10 s')));
    req.on('response', (res) => {
      let body = '';
      res.on('data', (chunk: Buffer) => void (body += chunk.toString('utf8')));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body, json: () => JSON.parse(body) as Record<string, unknown> }));
    });
    req.on('error', reject);
    req.end();
  });
}

/** A call as ui's code makes it: plain HTTP to alpha's local proxy. */
function call(method: string, path: string, headers: Record<string, string> = {}): Promise<Answer> {
  return fetch(`http://127.0.0.1:${proxyPort}${path}`, { method, headers }).then(async (res) => {
    const body = await res.text();
    return { status: res.status, body, json: () => JSON.parse(body) as Record<string, unknown> };
  });
}

/** A request straight to beta's mesh listener over mutual TLS with ui's own certificate, carrying whatever X-Postern-Svid the test forges. */
function direct(path: string, headers: Record<string, string>, cert = alpha.svid('shop/ui')!): Promise<Answer> {
  // https.request hands the TLS options (ALPN included) to tls.connect; its option type leaves ALPN out.
  const options: https.RequestOptions & tls.ConnectionOptions = {
    host: '127.0.0.1', port: inboundPort, path, method: 'GET', headers, agent: false,
    servername: meshServerName({ namespace: 'shop', name: 'api' }), ALPNProtocols: [MESH_ALPN],
    cert: cert.certPem, key: cert.keyPem, ca: [...authority.caPems()], checkServerIdentity: () => undefined,
  };
  return collect(https.request(options));
}

test('mesh http: an allowed GET reaches the service with the caller\'s identity; client-sent identity headers are stripped', async () => {
  const seen = upstream.seen.length;
  const answer = await call('GET', '/items/42?full=1', { 'x-auth-email': 'mallory@evil.example', X_Auth_User: 'root', 'x-postern-service': 'spiffe://mesh.test/ns/shop/svc/admin', 'x-forwarded-for': '203.0.113.9', 'x-postern-svid': 'forged' });
  assert.equal(answer.status, 200, answer.body);
  const headers = (answer.json().headers ?? {}) as Record<string, string>;
  assert.equal(answer.json().url, '/items/42?full=1');
  assert.equal(headers['x-postern-service'], UI);
  assert.equal(headers['x-forwarded-for'], '127.0.0.1');
  assert.equal(headers['x-forwarded-proto'], 'https');
  for (const name of ['x-auth-email', 'x_auth_user', 'x-auth-user', 'x-postern-jwt-assertion']) assert.equal(headers[name], undefined, name);
  const svid = await authority.verifyJwtSvid(headers['x-postern-svid']!, API);
  assert.equal(svid.spiffeId, UI, 'the callee gets the verified JWT-SVID, not the forged one');
  assert.equal(upstream.seen.length, seen + 1);
  const event = await waitFor(() => betaLog.of('http.request')[0], { timeoutMs: 5_000, what: 'http.request' });
  assert.equal(event.actor, UI);
  assert.equal(event.socket, API);
  assert.equal(event.decision, 'allow');
  assert.equal(event.rule, 'shop/api-callers#read-items');
  assert.deepEqual({ method: event.details?.method, path: event.details?.path, status: event.details?.status }, { method: 'GET', path: '/items/42', status: 200 });
  assert.deepEqual(event.details?.caller, { spiffeId: UI, agentId: 'agt_alpha', labels: { app: 'ui' } });
});

test('mesh http: a POST no rule allows is refused with 403 and the reason, and never reaches the service', async () => {
  const seen = upstream.seen.length;
  const answer = await call('POST', '/items/42');
  assert.equal(answer.status, 403);
  const problem = answer.json();
  assert.equal(problem.code, 'forbidden');
  assert.match(String(problem.detail), /no rule allows/);
  assert.equal(upstream.seen.length, seen);
  const event = await waitFor(() => betaLog.of('http.request')[0], { timeoutMs: 5_000, what: 'http.request' });
  assert.equal(event.decision, 'deny');
  assert.equal(event.details?.status, 403);
});

test('mesh http: a missing, tampered, wrong-audience, expired or another service\'s JWT-SVID is refused', async () => {
  const ui = alpha.svid('shop/ui')!;
  const good = (await alpha.signJwt(ui, API)).token;
  const tampered = `${good.slice(0, -4)}${good.slice(-4) === 'AAAA' ? 'BBBB' : 'AAAA'}`;
  const cases: [string, Record<string, string>, number, RegExp][] = [
    ['missing', {}, 401, /carries no x-postern-svid/],
    ['tampered', { 'x-postern-svid': tampered }, 401, /does not verify/],
    ['wrong audience', { 'x-postern-svid': (await alpha.signJwt(ui, serviceSpiffeId(TRUST_DOMAIN, 'shop', 'orders'))).token }, 401, /claim "aud"/],
    ['expired', { 'x-postern-svid': (await alpha.signJwt(ui, API, Math.floor(Date.now() / 1000) - 600, 60)).token }, 401, /expired/],
    ['another service', { 'x-postern-svid': (await batch.signJwt(batch.svid('shop/batch')!, API)).token }, 403, /names spiffe:\/\/mesh\.test\/ns\/shop\/svc\/batch, but the connection is spiffe:\/\/mesh\.test\/ns\/shop\/svc\/ui/],
  ];
  const seen = upstream.seen.length;
  for (const [what, headers, status, detail] of cases) {
    const answer = await direct('/items/1', headers);
    assert.equal(answer.status, status, `${what}: ${answer.body}`);
    assert.match(String(answer.json().detail), detail, what);
  }
  assert.equal((await direct('/items/1', { 'x-postern-svid': good })).status, 200, 'the same connection with a good token passes');
  assert.equal(upstream.seen.length, seen + 1);
});

test('mesh http: a certificate with a second URI SAN is refused at the handshake\'s end', async () => {
  const { keyPem, csrPem } = await createSvidKeyAndCsr(UI);
  const issued = await authority.ca.signCsr({ csrPem, commonName: 'agt_alpha', uris: [UI, serviceSpiffeId(TRUST_DOMAIN, 'shop', 'admin')], lifetimeMs: 60_000, usage: 'mutual' });
  const cert = { ...alpha.svid('shop/ui')!, certPem: issued.certPem, keyPem };
  await assert.rejects(direct('/items/1', { 'x-postern-svid': (await alpha.signJwt(cert, API)).token }, cert), /socket hang up|ECONNRESET/);
  const denied = await waitFor(() => betaLog.of('access.denied')[0], { timeoutMs: 5_000, what: 'access.denied' });
  assert.match(denied.reason ?? '', /2 URI SANs/);
});

test('mesh http: "ui on behalf of alice" allows alice\'s request, refuses bob\'s and the service without a person', async () => {
  const seen = upstream.seen.length;
  const alice = await authority.assertion('alice@corp.example');
  const allowed = await call('GET', '/alice/notes', { 'x-postern-jwt-assertion': alice });
  assert.equal(allowed.status, 200, allowed.body);
  const headers = (allowed.json().headers ?? {}) as Record<string, string>;
  assert.equal(headers['x-auth-email'], 'alice@corp.example');
  assert.equal(headers['x-auth-user'], 'usr_alice');
  assert.equal(headers['x-auth-groups'], 'staff');
  assert.equal(headers['x-postern-jwt-assertion'], alice);
  assert.equal(headers['x-postern-service'], UI);
  const bob = await call('GET', '/alice/notes', { 'x-postern-jwt-assertion': await authority.assertion('bob@corp.example') });
  assert.equal(bob.status, 403);
  assert.match(String(bob.json().detail), /no rule allows/);
  const alone = await call('GET', '/alice/notes');
  assert.equal(alone.status, 403);
  const forged = await call('GET', '/alice/notes', { 'x-postern-jwt-assertion': `${alice.slice(0, -4)}AAAA` });
  assert.equal(forged.status, 401);
  assert.match(String(forged.json().detail), /x-postern-jwt-assertion: /);
  assert.equal(upstream.seen.length, seen + 1, 'only alice\'s request reached the service');
  const logged = await waitFor(() => betaLog.of('http.request').length === 4 && betaLog.of('http.request'), { timeoutMs: 5_000, what: 'four http.request events' });
  assert.deepEqual(logged.map((e) => [e.decision, e.details?.onBehalfOf]), [['allow', 'alice@corp.example'], ['deny', 'bob@corp.example'], ['deny', undefined], ['deny', undefined]]);
});

test('mesh http headers: only agents set the mesh\'s and the identity headers, whatever the spelling', () => {
  const fromCode = { host: '127.0.0.1:7001', connection: 'keep-alive, x-drop', 'x-drop': '1', x_postern_svid: 'forged', 'X-Postern-Service': 'forged', 'x-postern-jwt-assertion': 'a.b.c', accept: 'application/json' };
  assert.deepEqual(senderHeaders(fromCode, 'jwt-svid'), { host: '127.0.0.1:7001', 'x-postern-jwt-assertion': 'a.b.c', accept: 'application/json', 'x-postern-svid': 'jwt-svid' });
  const caller = { spiffeId: UI, namespace: 'shop', name: 'ui', agentId: 'agt_alpha', labels: {} };
  const arriving = { host: 'api', 'x-postern-svid': 'jwt-svid', x_auth_email: 'mallory@evil.example', 'x-postern-jwt-assertion': 'unverified', cookie: 'postern_session=s; theme=dark', 'x-real-ip': '1.2.3.4' };
  assert.deepEqual(receiverHeaders(arriving, { clientIp: '10.0.0.1', caller, jwtSvid: 'jwt-svid' }), {
    host: 'api', cookie: 'theme=dark', 'x-forwarded-for': '10.0.0.1', 'x-forwarded-proto': 'https', 'x-forwarded-host': 'api', 'x-real-ip': '10.0.0.1', 'x-postern-service': UI, 'x-postern-svid': 'jwt-svid',
  });
  const alice = { id: 'usr_alice', email: 'alice@corp.example', groups: ['staff', 'a,b'] };
  const withUser = receiverHeaders(arriving, { clientIp: '10.0.0.1', caller, jwtSvid: 'jwt-svid', user: alice, assertion: 'verified' });
  assert.deepEqual([withUser['x-auth-email'], withUser['x-auth-user'], withUser['x-auth-groups'], withUser['x-postern-jwt-assertion']], ['alice@corp.example', 'usr_alice', 'staff,a%2Cb', 'verified']);
});
