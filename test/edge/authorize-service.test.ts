// The authorize endpoint's service reader, through the edge's real HTTP gate: a service's
// JWT-SVID for the socket's origin (signed by a real JwtSvidSigner) is decided by the stored
// policies as principal.service; a wrong audience, an expired or tampered token, a revoked agent
// and another trust domain are refused; a socket's "any signed-in user" admits people only.
import assert from 'node:assert/strict';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, test } from 'node:test';
import pino from 'pino';
import { JwtSvidSigner, serviceSpiffeId } from '../../src/ca/index.js';
import { Authorizer } from '../../src/edge/authorize.js';
import type { AuthorizeOptions } from '../../src/edge/authorize.js';
import { DEFAULT_HTTP_LIMITS, HttpGate } from '../../src/edge/http-gate.js';
import type { HttpContext } from '../../src/edge/http-gate.js';
import type { HttpSocketProxy } from '../../src/edge/http-proxy.js';
import type { IdentityGate } from '../../src/edge/identity-gate.js';
import type { EdgeView } from '../../src/edge/view.js';
import { SigningKeys, generateSigningKey } from '../../src/identity/index.js';
import type { SigningKeyMaterial } from '../../src/identity/index.js';
import { compileWithSocketPolicies } from '../../src/policy/index.js';
import { compileCidrs } from '../../src/reporting/index.js';
import type { NewAuditEvent } from '../../src/reporting/index.js';
import type { SocketRecord } from '../../src/store/index.js';

const NOW = new Date('2026-03-02T10:00:00Z');
const SECONDS = Math.floor(NOW.getTime() / 1000);
const TD = 'corp.test';
const CONTROL = 'https://localhost:8443';
const origin = (name: string) => `https://${name}.localhost:8443`;
const UI = serviceSpiffeId(TD, 'shop', 'ui');

const socket = (name: string): SocketRecord => ({
  id: `sock-${name}`, name, type: 'http', auth: { cloudauth: true, allowedEmailDomains: [], allowedEmailAddresses: [] }, upstream: null, description: '', tags: {},
  rawPaths: false, connectors: [], recordInput: false, upstreamHostKey: null, database: null, createdAt: NOW.toISOString(), updatedAt: NOW.toISOString(),
});
const sockets = new Map([['api', socket('api')], ['open', socket('open')]]);
const stored = [{ version: 1, document: { name: 'ui-reads-api', sockets: ['api'], rules: [
  { effect: 'allow', who: { service: { app: 'ui' } }, what: { http: { methods: ['GET'], paths: ['/orders/*'] } } },
] } }];

describe('the authorize endpoint: services by their JWT-SVID', () => {
  const events: NewAuditEvent[] = [];
  const revoked = new Set<string>();
  let signer: JwtSvidSigner;
  let server: http.Server;
  let port: number;

  const svid = (claims: { spiffeId?: string; audience?: string; labels?: Record<string, string>; agentId?: string } = {}, issuedAt = SECONDS) => signer.sign({
    spiffeId: claims.spiffeId ?? UI, audience: claims.audience ?? origin('api'), labels: claims.labels ?? { app: 'ui' }, agentId: claims.agentId ?? 'agt_ui1',
  }, issuedAt, 300);

  before(async () => {
    const material = await generateSigningKey() as SigningKeyMaterial & { privateKey: object };
    signer = await JwtSvidSigner.load(material.kid, material.privateKey);
    const keys = await SigningKeys.load(await generateSigningKey());
    // People would pass `open` (cloudauth, no lists); a service needs a stored policy.
    const view: EdgeView = {
      socket: (name) => sockets.get(name), connector: () => undefined, userByEmail: () => undefined, sessionLive: () => true,
      policies: () => compileWithSocketPolicies(stored, sockets.values()),
    };
    const proxy = { handleRequest: (_req: http.IncomingMessage, res: http.ServerResponse) => res.end('upstream') } as unknown as HttpSocketProxy;
    const clientIp = (req: http.IncomingMessage) => req.socket.remoteAddress ?? '';
    const identity = { gate: { identify: () => ({ reason: 'not signed in' }) } as unknown as IdentityGate, assertion: () => Promise.resolve('') };
    const context: HttpContext = { domain: 'localhost', view: () => view, logger: pino({ level: 'silent' }), audit: (event) => events.push(event), identity, now: () => NOW, proxy, clientIp };
    const authorize = new Authorizer({
      ...context, identity, trustedProxies: compileCidrs(['127.0.0.1']), peerIp: clientIp, clientIp,
      signingKeys: () => keys, issuer: CONTROL, controlOrigin: CONTROL, socketOrigin: origin,
      sessions: () => ({ sessionBySecret: () => undefined, session: () => undefined, user: () => undefined }),
      services: { trustDomain: TD, jwks: () => signer.jwks(), isAgentRevoked: (id) => revoked.has(id), policies: () => compileWithSocketPolicies(stored, []) },
    } satisfies AuthorizeOptions);
    server = new HttpGate({ ...context, limits: DEFAULT_HTTP_LIMITS, authorize }).server;
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    port = (server.address() as AddressInfo).port;
  });
  after(() => new Promise<void>((resolve) => server.close(() => resolve())));

  /** nginx's auth_request subrequest for `uri` on `name`, the service's token passed on. */
  const nginx = (token: string, uri: string, name = 'api', method = 'GET') => new Promise<{ status: number; headers: http.IncomingHttpHeaders; body: string }>((resolve, reject) => {
    const req = http.request({ host: '127.0.0.1', port, path: `/_postern/authz/${name}`, timeout: 5_000, headers: {
      host: 'localhost:8443', 'x-original-uri': uri, 'x-original-method': method, authorization: `Bearer ${token}`,
    } }, (res) => {
      let body = '';
      res.setEncoding('utf8').on('data', (chunk: string) => (body += chunk)).on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body }));
    });
    req.on('timeout', () => req.destroy(new Error('timed out')));
    req.on('error', reject);
    req.end();
  });
  const detail = (res: { body: string }) => String((JSON.parse(res.body) as { detail: string }).detail);

  test('a service the policies allow passes as principal.service, and is logged as itself', async () => {
    events.length = 0;
    const res = await nginx(await svid(), '/orders/7');
    assert.equal(res.status, 200, res.body);
    assert.equal(res.headers['x-postern-rule'], 'ui-reads-api#1');
    assert.equal(res.headers['x-auth-email'], undefined, 'no person to name');
    assert.deepEqual(events.map((e) => [e.type, e.actor, e.decision, e.sessionId, e.details?.path]), [['http.request', UI, 'allow', '', '/orders/7']]);
  });

  test('what the policies do not allow is denied with the reason', async () => {
    const post = await nginx(await svid(), '/orders/7', 'api', 'POST');
    assert.equal(post.status, 403);
    assert.match(String(post.headers['x-postern-reason']), /denied/);
    const other = await nginx(await svid({ labels: { app: 'batch' } }), '/orders/7');
    assert.equal(other.status, 403);
    assert.match(detail(other), /service/);
  });

  test('a socket\'s "any signed-in user" is for people: a service there needs a policy', async () => {
    const res = await nginx(await svid({ audience: origin('open') }), '/', 'open');
    assert.equal(res.status, 403, res.body);
    assert.match(detail(res), /no policy applies/);
  });

  test('a wrong audience, an expired or tampered token, a revoked agent are refused; another trust domain is not ours to read', async () => {
    const elsewhere = await nginx(await svid({ audience: origin('open') }), '/orders/7');
    assert.equal(elsewhere.status, 401);
    assert.match(detail(elsewhere), /service token is not valid for this socket.*"aud"/);
    const expired = await nginx(await svid({}, SECONDS - 600), '/orders/7');
    assert.equal(expired.status, 401);
    assert.match(detail(expired), /expired/);
    const [h, p, s] = (await svid()).split('.');
    const claims = JSON.parse(Buffer.from(p!, 'base64url').toString('utf8')) as Record<string, unknown>;
    const tampered = [h, Buffer.from(JSON.stringify({ ...claims, labels: { app: 'ui', admin: 'yes' } })).toString('base64url'), s].join('.');
    assert.equal((await nginx(tampered, '/orders/7')).status, 401);
    revoked.add('agt_gone');
    const fromRevoked = await nginx(await svid({ agentId: 'agt_gone' }), '/orders/7');
    assert.equal(fromRevoked.status, 401);
    assert.match(detail(fromRevoked), /agt_gone is revoked/);
    const foreign = await nginx(await svid({ spiffeId: serviceSpiffeId('other.test', 'shop', 'ui') }), '/orders/7');
    assert.equal(foreign.status, 401);
    assert.match(detail(foreign), /^not signed in/, 'a bearer that names no service of ours is the upstream\'s business');
  });
});
