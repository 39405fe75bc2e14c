// The authorize endpoint for other proxies, through the edge's real HTTP gate: nginx, Traefik and
// Envoy shapes of the original request, trust only in trusted proxies, every credential kind, and
// hostile spellings of a path decided exactly as the edge decides them on the socket host.
import assert from 'node:assert/strict';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, test } from 'node:test';
import { createLocalJWKSet, jwtVerify } from 'jose';
import pino from 'pino';
import { HttpGate, DEFAULT_HTTP_LIMITS } from '../../src/edge/http-gate.js';
import type { HttpContext } from '../../src/edge/http-gate.js';
import { Authorizer } from '../../src/edge/authorize.js';
import type { AuthorizeOptions } from '../../src/edge/authorize.js';
import { parseForwardedRequest } from '../../src/edge/forwarded-request.js';
import { IdentityGate } from '../../src/edge/identity-gate.js';
import type { HttpSocketProxy } from '../../src/edge/http-proxy.js';
import type { EdgeIdentity, EdgeView } from '../../src/edge/view.js';
import { AssertionCache, SigningKeys, generateSigningKey, hashToken } from '../../src/identity/index.js';
import { compileWithSocketPolicies } from '../../src/policy/index.js';
import { compileCidrs } from '../../src/reporting/index.js';
import type { NewAuditEvent } from '../../src/reporting/index.js';
import type { SessionGrantRecord, SessionRecord, SocketRecord, UserRecord } from '../../src/store/index.js';

const NOW = new Date('2026-03-02T10:00:00Z');
const DOMAIN = 'localhost';
const CONTROL = 'https://localhost:8443';
const origin = (name: string) => `https://${name}.localhost:8443`;
const secret = (c: string) => c.repeat(43);
const SOCKET_COOKIE = secret('s');
const CONTROL_COOKIE = secret('c');
const CLI_TOKEN = `pst1_${secret('t')}`;

const socket = (name: string, extra: Partial<SocketRecord> = {}): SocketRecord => ({
  id: `sock-${name}`, name, type: 'http', auth: { cloudauth: true, allowedEmailDomains: [], allowedEmailAddresses: [] }, upstream: null, description: '', tags: {},
  rawPaths: false, connectors: [], recordInput: false, upstreamHostKey: null, database: null, createdAt: NOW.toISOString(), updatedAt: NOW.toISOString(), ...extra,
});
const user: UserRecord = { id: 'u-ana', email: 'ana@corp.example', name: 'Ana', groups: ['staff', 'a,b'], passwordHash: null, disabledAt: null, createdAt: NOW.toISOString(), updatedAt: NOW.toISOString() };
const session = (id: string, kind: 'browser' | 'cli', secretHash: string): SessionRecord => ({
  id, userId: user.id, kind, provider: 'local', clientIp: '127.0.0.1', userAgent: 'test', secretHash, createdAt: NOW.toISOString(), lastSeenAt: NOW.toISOString(), expiresAt: '2026-03-03T10:00:00Z', revokedAt: null,
});
const sessions = [session('ses-socket', 'browser', 'unused'), session('ses-control', 'browser', hashToken(CONTROL_COOKIE)), session('ses-cli', 'cli', hashToken(CLI_TOKEN))];
const grant: SessionGrantRecord = { id: 'g1', sessionId: 'ses-socket', socket: 'app', secretHash: hashToken(SOCKET_COOKIE), createdAt: NOW.toISOString() };

const sockets = new Map([['app', socket('app')], ['other', socket('other')], ['open', socket('open', { auth: { cloudauth: false, allowedEmailDomains: [], allowedEmailAddresses: [] } })], ['db', socket('db', { type: 'tls' })]]);
const policies = compileWithSocketPolicies([
  { version: 1, document: { name: 'app-rules', sockets: ['app'], rules: [
    { effect: 'deny', what: { http: { paths: ['/admin/*', '/admin'] } } },
    { effect: 'deny', where: { ip: ['203.0.113.0/24'] } },
  ] } },
], sockets.values());

const view: EdgeView = {
  socket: (name) => sockets.get(name), connector: () => undefined, userByEmail: () => user, sessionLive: () => true, policies: () => policies,
};

interface Seen { url: string; headers: http.IncomingHttpHeaders }

describe('the authorize endpoint', () => {
  const events: NewAuditEvent[] = [];
  const upstreamSaw: Seen[] = [];
  let server: http.Server;
  let port: number;
  let keys: SigningKeys;

  before(async () => {
    keys = await SigningKeys.load(await generateSigningKey());
    const assertions = new AssertionCache({ issuer: CONTROL, keys: () => keys, now: () => NOW });
    const gate = new IdentityGate({
      controlOrigin: CONTROL, idleTimeoutMs: 3_600_000, now: () => NOW,
      exchangeHandoff: () => Promise.reject(new Error('no handoffs here')), signOut: () => Promise.resolve(),
      view: () => ({ grant: (hash) => (hash === grant.secretHash ? grant : undefined), session: (id) => sessions.find((s) => s.id === id), user: (id) => (id === user.id ? user : undefined) }),
    });
    const identity: EdgeIdentity = {
      gate,
      assertion: (who, record) => assertions.get({ sessionId: who.session.id, userId: who.user.id, email: who.user.email, groups: who.user.groups }, origin(record.name)),
    };
    // The upstream of the socket host: answers 200 and remembers what the edge forwarded.
    const proxy = { handleRequest: (req: http.IncomingMessage, res: http.ServerResponse) => {
      upstreamSaw.push({ url: req.url ?? '', headers: req.headers });
      res.end('upstream');
    } } as unknown as HttpSocketProxy;
    const clientIp = (req: http.IncomingMessage) => req.socket.remoteAddress ?? '';
    const context: HttpContext = { domain: DOMAIN, view: () => view, logger: pino({ level: 'silent' }), audit: (event) => events.push(event), identity, now: () => NOW, proxy, clientIp };
    const authorize = new Authorizer({
      ...context, identity, trustedProxies: compileCidrs(['127.0.0.1']), peerIp: clientIp,
      // X-Forwarded-For walked as the front door does: the trusted peer's word for the client.
      clientIp: (req) => String(req.headers['x-forwarded-for'] ?? req.socket.remoteAddress).split(',').at(-1)!.trim(),
      signingKeys: () => keys, issuer: CONTROL, controlOrigin: CONTROL, socketOrigin: origin,
      sessions: () => ({ sessionBySecret: (hash) => sessions.find((s) => s.secretHash === hash), session: (id) => sessions.find((s) => s.id === id), user: (id) => (id === user.id ? user : undefined) }),
    } satisfies AuthorizeOptions);
    server = new HttpGate({ ...context, limits: DEFAULT_HTTP_LIMITS, authorize }).server;
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    port = (server.address() as AddressInfo).port;
  });
  after(() => new Promise<void>((resolve) => server.close(() => resolve())));

  /** A raw request: the path goes on the wire exactly as written. */
  const send = (path: string, headers: Record<string, string>, method = 'GET') => new Promise<{ status: number; headers: http.IncomingHttpHeaders; body: string }>((resolve, reject) => {
    const req = http.request({ host: '127.0.0.1', port, path, method, headers, timeout: 5_000 }, (res) => {
      let body = '';
      res.setEncoding('utf8').on('data', (chunk: string) => (body += chunk)).on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body }));
    });
    req.on('timeout', () => req.destroy(new Error('timed out')));
    req.on('error', reject);
    req.end();
  });
  const nginx = (uri: string, extra: Record<string, string> = {}, method = 'GET') =>
    send('/_postern/authz/app', { host: 'localhost:8443', 'x-original-uri': uri, 'x-original-method': method, cookie: `__Host-postern_session=${SOCKET_COOKIE}`, ...extra });

  test('nginx: an allowed request gets 200 and the identity headers the edge gives upstreams, and is logged', async () => {
    events.length = 0;
    const res = await nginx('/reports?q=1', { 'x-real-ip': '198.51.100.7' });
    assert.equal(res.status, 200, res.body);
    assert.equal(res.headers['x-auth-email'], 'ana@corp.example');
    assert.equal(res.headers['x-auth-user'], 'u-ana');
    assert.equal(res.headers['x-auth-groups'], 'staff,a%2Cb');
    const { payload } = await jwtVerify(String(res.headers['x-postern-jwt-assertion']), createLocalJWKSet(keys.jwks()), { audience: origin('app'), issuer: CONTROL, currentDate: NOW });
    assert.equal(payload.sub, 'u-ana');
    const [event] = events;
    assert.deepEqual([events.length, event?.type, event?.decision, event?.actor, event?.clientIp, event?.sessionId], [1, 'http.request', 'allow', 'ana@corp.example', '198.51.100.7', 'ses-socket']);
    assert.deepEqual([event?.details?.method, event?.details?.path, event?.details?.status, event?.details?.via], ['GET', '/reports', 200, 'authorize']);
  });

  test('nginx: a denied request gets 403 with the rule and reason in headers and a problem body', async () => {
    events.length = 0;
    const res = await nginx('/admin/users', {}, 'POST');
    assert.equal(res.status, 403);
    assert.equal(res.headers['x-postern-rule'], 'app-rules#1');
    assert.match(String(res.headers['x-postern-reason']), /denied/);
    assert.equal(res.headers['content-type'], 'application/problem+json');
    assert.equal(JSON.parse(res.body).code, 'forbidden');
    assert.equal(res.headers['x-auth-email'], undefined);
    assert.deepEqual([events[0]?.decision, events[0]?.details?.method, events[0]?.details?.status], ['deny', 'POST', 403]);
  });

  test('Traefik: X-Forwarded-Method/-Uri/-Host describe the request; the client address comes from X-Forwarded-For', async () => {
    const traefik = (uri: string, xff: string) => send('/_postern/authz/app', {
      host: 'localhost', 'x-forwarded-method': 'GET', 'x-forwarded-proto': 'https', 'x-forwarded-host': 'app.corp.example', 'x-forwarded-uri': uri, 'x-forwarded-for': xff,
      cookie: `other=1; __Host-postern_session=${SOCKET_COOKIE}`,
    });
    events.length = 0;
    assert.equal((await traefik('/dash', '198.51.100.7')).status, 200);
    assert.equal(events[0]?.details?.host, 'app.corp.example');
    assert.equal((await traefik('/dash', '203.0.113.9')).status, 403, 'a where rule sees the original client');
    assert.equal((await traefik('/admin', '198.51.100.7')).status, 403);
  });

  test('Envoy: the original method and path ride on the authorize path, under the original Host', async () => {
    const envoy = (path: string, method: string) => send(`/_postern/authz/app${path}`, { host: 'app.corp.example', cookie: `__Host-postern_session=${SOCKET_COOKIE}` }, method);
    assert.equal((await envoy('/reports?x=1', 'GET')).status, 200);
    assert.equal((await envoy('/admin/x', 'DELETE')).status, 403);
    assert.equal((await envoy('/', 'POST')).status, 200);
  });

  test('without an identity: 401 with the sign-in URL and return_to; ?redirect=1 makes it the redirect itself', async () => {
    const res = await send('/_postern/authz/app', { host: 'localhost', 'x-original-uri': '/a/../reports?q=1' });
    assert.equal(res.status, 401);
    const login = new URL(String(res.headers.location));
    assert.equal(`${login.origin}${login.pathname}`, `${CONTROL}/auth/login`);
    assert.deepEqual([login.searchParams.get('socket'), login.searchParams.get('return_to')], ['app', '/reports?q=1']);
    assert.equal(JSON.parse(res.body).code, 'unauthenticated');
    const redirect = await send('/_postern/authz/app?redirect=1', { host: 'localhost', 'x-forwarded-uri': '/reports', 'x-forwarded-method': 'GET' });
    assert.equal(redirect.status, 302);
    assert.equal(redirect.headers.location, res.headers.location?.replace(/return_to=[^&]*/, 'return_to=%2Freports'));
  });

  test('credentials: the control host cookie, a CLI token, and the assertion Postern issued for this socket', async () => {
    const asked = (headers: Record<string, string>) => send('/_postern/authz/app', { host: 'localhost', 'x-original-uri': '/reports', ...headers });
    events.length = 0;
    assert.equal((await asked({ cookie: `__Host-postern_session=${CONTROL_COOKIE}` })).status, 200);
    assert.equal((await asked({ authorization: `Bearer ${CLI_TOKEN}` })).status, 200);
    assert.deepEqual(events.map((e) => e.sessionId), ['ses-control', 'ses-cli']);
    const assertion = String((await asked({ cookie: `__Host-postern_session=${CONTROL_COOKIE}` })).headers['x-postern-jwt-assertion']);
    assert.equal((await asked({ authorization: `Bearer ${assertion}` })).status, 200);
    // Issued for `app`, so it is no one's credential on `other`.
    const elsewhere = await send('/_postern/authz/other', { host: 'localhost', 'x-original-uri': '/', authorization: `Bearer ${assertion}` });
    assert.equal(elsewhere.status, 401);
    assert.match(JSON.parse(elsewhere.body).detail, /assertion is not valid/);
    // A bearer that is not Postern's belongs to the upstream; the cookie still speaks.
    assert.equal((await asked({ authorization: 'Bearer abc.def', cookie: `__Host-postern_session=${SOCKET_COOKIE}` })).status, 200);
    // A grant of `app` is not a cookie of `other`; an unknown CLI token is nobody.
    assert.equal((await send('/_postern/authz/other', { host: 'localhost', 'x-original-uri': '/', cookie: `__Host-postern_session=${SOCKET_COOKIE}` })).status, 401);
    assert.equal((await asked({ authorization: `Bearer pst1_${secret('x')}` })).status, 401);
  });

  test('hostile spellings get exactly the decision the edge gives on the socket host', async () => {
    const spellings = ['/a/../admin/x', '/%2e%2e/admin/x', '/%2E%2e/%61dmin', '//admin//x', '/./admin/./x', '/admin%2Fx', '/admin%5cx', '/public;/../admin', '/a\\..\\admin', '/reports/../reports', '/ADMIN/x', '/%7Euser', '/x%00'];
    const outcomes = new Set<number>();
    for (const spelling of spellings) {
      upstreamSaw.length = 0;
      const edge = await send(spelling, { host: 'app.localhost', cookie: `__Host-postern_session=${SOCKET_COOKIE}` });
      outcomes.add(edge.status);
      const asked = await nginx(spelling);
      if (edge.status === 400) {
        assert.equal(asked.status, 403, `${spelling}: the edge refuses it (${edge.body.trim()}), so the proxy must not pass it`);
        assert.match(String(asked.headers['x-postern-reason']), new RegExp(`^${String(edge.headers['postern-error'])}:`), spelling);
      } else {
        assert.equal(asked.status, edge.status, `${spelling}: edge ${edge.status}, authorize ${asked.status}`);
      }
      if (edge.status === 200) assert.ok(upstreamSaw[0]?.url, spelling);
    }
    assert.deepEqual([...outcomes].sort(), [200, 400, 403], 'the spellings cover allowed, denied and refused targets');
  });

  test('only trusted proxies are believed; other sockets and broken descriptions are refused', async () => {
    const untrusted = new Authorizer({
      view: () => view, logger: pino({ level: 'silent' }), audit: () => undefined, now: () => NOW,
      identity: { gate: {} as IdentityGate, assertion: () => Promise.resolve('') }, trustedProxies: compileCidrs(['10.0.0.0/8']),
      peerIp: () => '127.0.0.1', clientIp: () => '127.0.0.1', signingKeys: () => keys, issuer: CONTROL, controlOrigin: CONTROL, socketOrigin: origin,
      sessions: () => ({ sessionBySecret: () => undefined, session: () => undefined, user: () => undefined }),
    });
    const refused = await new Promise<{ status: number; body: string }>((resolve) => {
      const probe = http.createServer((req, res) => void untrusted.handle(req, res));
      probe.listen(0, '127.0.0.1', () => {
        const req = http.request({ host: '127.0.0.1', port: (probe.address() as AddressInfo).port, path: '/_postern/authz/app', headers: { 'x-original-uri': '/', cookie: `__Host-postern_session=${SOCKET_COOKIE}` } }, (res) => {
          let body = '';
          res.setEncoding('utf8').on('data', (c: string) => (body += c)).on('end', () => probe.close(() => resolve({ status: res.statusCode ?? 0, body })));
        });
        req.end();
      });
    });
    assert.equal(refused.status, 403);
    assert.match(JSON.parse(refused.body).detail, /trusted proxy/);
    for (const name of ['open', 'db', 'nope']) assert.equal((await send(`/_postern/authz/${name}`, { host: 'localhost', 'x-original-uri': '/' })).status, 404, name);
    assert.equal((await send('/_postern/authz/app', { host: 'localhost' })).status, 400, 'no original target');
    assert.equal((await send('/_postern/authz/app', { host: 'localhost', 'x-original-uri': '/', 'x-original-method': 'BREW' })).status, 400);
    assert.equal((await send('/_postern/authz/app', { host: 'localhost', 'x-original-uri': 'http://evil/', cookie: `__Host-postern_session=${SOCKET_COOKIE}` })).status, 403, 'absolute-form is refused as the edge refuses it');
    // A socket host's own /_postern/authz is its upstream's path, never the endpoint.
    upstreamSaw.length = 0;
    assert.equal((await send('/_postern/authz/app', { host: 'app.localhost', cookie: `__Host-postern_session=${SOCKET_COOKIE}`, 'x-original-uri': '/admin' })).status, 200);
    assert.equal(upstreamSaw[0]?.url, '/_postern/authz/app');
  });
});

test('parseForwardedRequest: one value per header, a known method, a target from some proxy', () => {
  const parse = (url: string, headers: Record<string, string[]>, method = 'GET') => parseForwardedRequest(url, method, headers);
  assert.deepEqual(parse('/_postern/authz/app', { 'x-original-uri': ['/a'], 'x-original-method': ['PUT'] }), { ok: true, request: { socket: 'app', method: 'PUT', rawTarget: '/a', host: undefined } });
  assert.deepEqual(parse('/_postern/authz/app/x/y?z', {}, 'PATCH'), { ok: true, request: { socket: 'app', method: 'PATCH', rawTarget: '/x/y?z', host: undefined } });
  assert.equal(parse('/_postern/authz/app?redirect=1', {}).ok, false, 'a query on the authorize URL is no target');
  const twice = parse('/_postern/authz/app', { 'x-original-uri': ['/a', '/admin'] });
  assert.ok(!twice.ok && /more than once/.test(twice.detail));
  const badName = parse('/_postern/authz/Bad_Name', { 'x-original-uri': ['/'] });
  assert.ok(!badName.ok && badName.status === 404);
  // The explicit header wins over Envoy's suffix; nginx's over Traefik's.
  assert.deepEqual(parse('/_postern/authz/app/x', { 'x-forwarded-uri': ['/t'], 'x-original-uri': ['/n'] }), { ok: true, request: { socket: 'app', method: 'GET', rawTarget: '/n', host: undefined } });
});
